import type { MigrationInterface, QueryRunner } from 'typeorm';

export class FilesFollowConversation1795901413323 implements MigrationInterface {
  name = 'FilesFollowConversation1795901413323';

  async up(q: QueryRunner): Promise<void> {
    await q.query("ALTER TABLE \"file_uploads\" DROP CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\"");
    await q.query("ALTER TABLE \"file_uploads\" ADD CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\" FOREIGN KEY (\"conversation_id\") REFERENCES \"conversations\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("ALTER TABLE \"file_uploads\" DROP CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\"");
    await q.query("ALTER TABLE \"file_uploads\" ADD CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\" FOREIGN KEY (\"conversation_id\") REFERENCES \"conversations\"(\"id\") ON DELETE SET NULL ON UPDATE NO ACTION");
  }
}
