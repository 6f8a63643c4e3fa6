import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Written by hand from the generated one: TypeORM rebuilt the whole table (a copy of every row,
 * extracted texts included) where SQLite adds or drops a nullable column in place.
 */
export class AttachmentOrder1795978803386 implements MigrationInterface {
  name = 'AttachmentOrder1795978803386';

  async up(q: QueryRunner): Promise<void> {
    await q.query("ALTER TABLE \"file_uploads\" ADD COLUMN \"attach_position\" integer");
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("ALTER TABLE \"file_uploads\" DROP COLUMN \"attach_position\"");
  }
}
