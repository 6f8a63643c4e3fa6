import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1795899035967 implements MigrationInterface {
  name = 'Initial1795899035967';

  async up(q: QueryRunner): Promise<void> {
    await q.query("CREATE TABLE \"conversations\" (\"id\" character varying(36) NOT NULL, \"session_id\" character varying(36) NOT NULL, \"title\" character varying(200), \"created_at\" TIMESTAMP NOT NULL, \"updated_at\" TIMESTAMP NOT NULL, \"is_active\" boolean NOT NULL DEFAULT true, \"message_count\" integer NOT NULL DEFAULT '0', \"next_position\" integer NOT NULL DEFAULT '0', CONSTRAINT \"PK_ee34f4f7ced4ec8681f26bf04ef\" PRIMARY KEY (\"id\"))");
    await q.query("CREATE INDEX \"idx_active_conversations\" ON \"conversations\"  (\"session_id\", \"is_active\", \"updated_at\") ");
    await q.query("CREATE INDEX \"idx_conversations_session_updated\" ON \"conversations\"  (\"session_id\", \"updated_at\") ");
    await q.query("CREATE TABLE \"messages\" (\"id\" character varying(36) NOT NULL, \"conversation_id\" character varying(36) NOT NULL, \"position\" integer NOT NULL, \"role\" character varying(16) NOT NULL, \"content\" text NOT NULL DEFAULT '', \"status\" character varying(16) NOT NULL DEFAULT 'complete', \"created_at\" TIMESTAMP NOT NULL, \"updated_at\" TIMESTAMP NOT NULL, \"token_count\" integer, \"model_name\" character varying(200), \"finish_reason\" character varying(32), \"error_code\" character varying(64), \"prompt_tokens\" integer, \"completion_tokens\" integer, \"feedback\" character varying(16), \"feedback_comment\" text, \"feedback_at\" TIMESTAMP, \"owner_instance\" character varying(64), \"lease_expires_at\" TIMESTAMP, \"idempotency_key\" character varying(128), \"replaces_id\" character varying(36), CONSTRAINT \"PK_18325f38ae6de43878487eff986\" PRIMARY KEY (\"id\"))");
    await q.query("CREATE INDEX \"idx_messages_idempotency\" ON \"messages\"  (\"conversation_id\", \"idempotency_key\") ");
    await q.query("CREATE INDEX \"idx_messages_streaming_lease\" ON \"messages\"  (\"status\", \"lease_expires_at\") ");
    await q.query("CREATE UNIQUE INDEX \"idx_messages_conversation_position\" ON \"messages\"  (\"conversation_id\", \"position\") ");
    await q.query("CREATE INDEX \"idx_messages_conversation_created\" ON \"messages\"  (\"conversation_id\", \"created_at\") ");
    await q.query("CREATE TABLE \"file_uploads\" (\"id\" character varying(36) NOT NULL, \"session_id\" character varying(36) NOT NULL, \"conversation_id\" character varying(36), \"message_id\" character varying(36), \"filename\" character varying(255) NOT NULL, \"file_type\" character varying(16) NOT NULL, \"file_size\" integer NOT NULL, \"file_path\" character varying(255) NOT NULL, \"sha256\" character varying(64) NOT NULL, \"extracted_text\" text NOT NULL DEFAULT '', \"token_count\" integer NOT NULL DEFAULT '0', \"pages\" integer, \"created_at\" TIMESTAMP NOT NULL, CONSTRAINT \"PK_b3ebfc99a8b660f0bc64a052b42\" PRIMARY KEY (\"id\"))");
    await q.query("CREATE INDEX \"idx_file_uploads_storage_key\" ON \"file_uploads\"  (\"file_path\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_conversation\" ON \"file_uploads\"  (\"conversation_id\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_session_created\" ON \"file_uploads\"  (\"session_id\", \"created_at\") ");
    await q.query("CREATE INDEX \"idx_file_uploads_message\" ON \"file_uploads\"  (\"message_id\") ");
    await q.query("CREATE TABLE \"sessions\" (\"id\" character varying(36) NOT NULL, \"created_at\" TIMESTAMP NOT NULL, \"last_accessed\" TIMESTAMP NOT NULL, \"user_agent\" character varying(512), \"ip_address\" character varying(64), \"revoked_at\" TIMESTAMP, CONSTRAINT \"PK_3238ef96f18b355b671619111bc\" PRIMARY KEY (\"id\"))");
    await q.query("CREATE INDEX \"idx_sessions_last_accessed\" ON \"sessions\"  (\"last_accessed\") ");
    await q.query("ALTER TABLE \"conversations\" ADD CONSTRAINT \"FK_285e84ab2537d6af999be71aa55\" FOREIGN KEY (\"session_id\") REFERENCES \"sessions\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await q.query("ALTER TABLE \"messages\" ADD CONSTRAINT \"FK_3bc55a7c3f9ed54b520bb5cfe23\" FOREIGN KEY (\"conversation_id\") REFERENCES \"conversations\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await q.query("ALTER TABLE \"file_uploads\" ADD CONSTRAINT \"FK_d9222df14e96235d160ddcce6c4\" FOREIGN KEY (\"session_id\") REFERENCES \"sessions\"(\"id\") ON DELETE CASCADE ON UPDATE NO ACTION");
    await q.query("ALTER TABLE \"file_uploads\" ADD CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\" FOREIGN KEY (\"conversation_id\") REFERENCES \"conversations\"(\"id\") ON DELETE SET NULL ON UPDATE NO ACTION");
    await q.query("ALTER TABLE \"file_uploads\" ADD CONSTRAINT \"FK_61de7617f015e86863472560478\" FOREIGN KEY (\"message_id\") REFERENCES \"messages\"(\"id\") ON DELETE SET NULL ON UPDATE NO ACTION");
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("ALTER TABLE \"file_uploads\" DROP CONSTRAINT \"FK_61de7617f015e86863472560478\"");
    await q.query("ALTER TABLE \"file_uploads\" DROP CONSTRAINT \"FK_e76a0efc8996a030277bbe9d44f\"");
    await q.query("ALTER TABLE \"file_uploads\" DROP CONSTRAINT \"FK_d9222df14e96235d160ddcce6c4\"");
    await q.query("ALTER TABLE \"messages\" DROP CONSTRAINT \"FK_3bc55a7c3f9ed54b520bb5cfe23\"");
    await q.query("ALTER TABLE \"conversations\" DROP CONSTRAINT \"FK_285e84ab2537d6af999be71aa55\"");
    await q.query("DROP INDEX \"public\".\"idx_sessions_last_accessed\"");
    await q.query("DROP TABLE \"sessions\"");
    await q.query("DROP INDEX \"public\".\"idx_file_uploads_message\"");
    await q.query("DROP INDEX \"public\".\"idx_file_uploads_session_created\"");
    await q.query("DROP INDEX \"public\".\"idx_file_uploads_conversation\"");
    await q.query("DROP INDEX \"public\".\"idx_file_uploads_storage_key\"");
    await q.query("DROP TABLE \"file_uploads\"");
    await q.query("DROP INDEX \"public\".\"idx_messages_conversation_created\"");
    await q.query("DROP INDEX \"public\".\"idx_messages_conversation_position\"");
    await q.query("DROP INDEX \"public\".\"idx_messages_streaming_lease\"");
    await q.query("DROP INDEX \"public\".\"idx_messages_idempotency\"");
    await q.query("DROP TABLE \"messages\"");
    await q.query("DROP INDEX \"public\".\"idx_conversations_session_updated\"");
    await q.query("DROP INDEX \"public\".\"idx_active_conversations\"");
    await q.query("DROP TABLE \"conversations\"");
  }
}
