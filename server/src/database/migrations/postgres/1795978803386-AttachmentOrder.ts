import type { MigrationInterface, QueryRunner } from 'typeorm';

export class AttachmentOrder1795978803386 implements MigrationInterface {
  name = 'AttachmentOrder1795978803386';

  async up(q: QueryRunner): Promise<void> {
    await q.query("ALTER TABLE \"file_uploads\" ADD \"attach_position\" integer");
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("ALTER TABLE \"file_uploads\" DROP COLUMN \"attach_position\"");
  }
}
