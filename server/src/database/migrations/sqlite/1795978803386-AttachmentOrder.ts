import type { MigrationInterface, QueryRunner } from 'typeorm';

export class AttachmentOrder1795978803386 implements MigrationInterface {
  name = 'AttachmentOrder1795978803386';

  async up(q: QueryRunner): Promise<void> {
    await q.query("DROP INDEX \"idx_file_uploads_storage_key\"");
    await q.query("DROP INDEX \"idx_file_uploads_conversation\"");
    await q.query("DROP INDEX \"idx_file_uploads_session_created\"");
    await q.query("DROP INDEX \"idx_file_uploads_message\"");
    await q.query("CREATE TABLE \"temporary_file_uploads\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"session_id\" varchar(36) NOT NULL, \"conversation_id\" varchar(36), \"message_id\" varchar(36), \"filename\" varchar(255) NOT NULL, \"file_type\" varchar(16) NOT NULL, \"file_size\" integer NOT NULL, \"file_path\" varchar(255) NOT NULL, \"sha256\" varchar(64) NOT NULL, \"extracted_text\" text NOT NULL DEFAULT (''), \"token_count\" integer NOT NULL DEFAULT (0), \"pages\" integer, \"created_at\" datetime NOT NULL, \"attach_position\" integer, CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\" FOREIGN KEY (\"conversation_id\") REFERENCES \"conversations\" (\"id\") ON DELETE CASCADE ON UPDATE NO ACTION, CONSTRAINT \"FK_d9222df14e96235d160ddcce6c4\" FOREIGN KEY (\"session_id\") REFERENCES \"sessions\" (\"id\") ON DELETE CASCADE ON UPDATE NO ACTION, CONSTRAINT \"FK_61de7617f015e86863472560478\" FOREIGN KEY (\"message_id\") REFERENCES \"messages\" (\"id\") ON DELETE SET NULL ON UPDATE NO ACTION)");
    await q.query("INSERT INTO \"temporary_file_uploads\"(\"id\", \"session_id\", \"conversation_id\", \"message_id\", \"filename\", \"file_type\", \"file_size\", \"file_path\", \"sha256\", \"extracted_text\", \"token_count\", \"pages\", \"created_at\") SELECT \"id\", \"session_id\", \"conversation_id\", \"message_id\", \"filename\", \"file_type\", \"file_size\", \"file_path\", \"sha256\", \"extracted_text\", \"token_count\", \"pages\", \"created_at\" FROM \"file_uploads\"");
    await q.query("DROP TABLE \"file_uploads\"");
    await q.query("ALTER TABLE \"temporary_file_uploads\" RENAME TO \"file_uploads\"");
    await q.query("CREATE INDEX \"idx_file_uploads_storage_key\" ON \"file_uploads\" (\"file_path\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_conversation\" ON \"file_uploads\" (\"conversation_id\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_session_created\" ON \"file_uploads\" (\"session_id\", \"created_at\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_message\" ON \"file_uploads\" (\"message_id\") ");
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("DROP INDEX \"idx_file_uploads_message\"");
    await q.query("DROP INDEX \"idx_file_uploads_session_created\"");
    await q.query("DROP INDEX \"idx_file_uploads_conversation\"");
    await q.query("DROP INDEX \"idx_file_uploads_storage_key\"");
    await q.query("ALTER TABLE \"file_uploads\" RENAME TO \"temporary_file_uploads\"");
    await q.query("CREATE TABLE \"file_uploads\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"session_id\" varchar(36) NOT NULL, \"conversation_id\" varchar(36), \"message_id\" varchar(36), \"filename\" varchar(255) NOT NULL, \"file_type\" varchar(16) NOT NULL, \"file_size\" integer NOT NULL, \"file_path\" varchar(255) NOT NULL, \"sha256\" varchar(64) NOT NULL, \"extracted_text\" text NOT NULL DEFAULT (''), \"token_count\" integer NOT NULL DEFAULT (0), \"pages\" integer, \"created_at\" datetime NOT NULL, CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\" FOREIGN KEY (\"conversation_id\") REFERENCES \"conversations\" (\"id\") ON DELETE CASCADE ON UPDATE NO ACTION, CONSTRAINT \"FK_d9222df14e96235d160ddcce6c4\" FOREIGN KEY (\"session_id\") REFERENCES \"sessions\" (\"id\") ON DELETE CASCADE ON UPDATE NO ACTION, CONSTRAINT \"FK_61de7617f015e86863472560478\" FOREIGN KEY (\"message_id\") REFERENCES \"messages\" (\"id\") ON DELETE SET NULL ON UPDATE NO ACTION)");
    await q.query("INSERT INTO \"file_uploads\"(\"id\", \"session_id\", \"conversation_id\", \"message_id\", \"filename\", \"file_type\", \"file_size\", \"file_path\", \"sha256\", \"extracted_text\", \"token_count\", \"pages\", \"created_at\") SELECT \"id\", \"session_id\", \"conversation_id\", \"message_id\", \"filename\", \"file_type\", \"file_size\", \"file_path\", \"sha256\", \"extracted_text\", \"token_count\", \"pages\", \"created_at\" FROM \"temporary_file_uploads\"");
    await q.query("DROP TABLE \"temporary_file_uploads\"");
    await q.query("CREATE INDEX \"idx_file_uploads_message\" ON \"file_uploads\" (\"message_id\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_session_created\" ON \"file_uploads\" (\"session_id\", \"created_at\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_conversation\" ON \"file_uploads\" (\"conversation_id\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_storage_key\" ON \"file_uploads\" (\"file_path\") ");
  }
}
