import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The two indexes of `messages` that only a few rows are looked up by become partial: the lease
 * index holds streaming replies only (what the lease sweep and the busy check look for), the
 * idempotency index only messages sent with an Idempotency-Key. A turn's other rows no longer
 * write to them: a first message's turn wrote 15.4 pages to SQLite's log, 13.0 with these (the
 * same SQL on both databases; TypeORM's schema diff does not compare an index's WHERE, so
 * schema.medium.spec.ts checks these two by name).
 */
export class PartialMessageIndexes1796150000000 implements MigrationInterface {
  name = 'PartialMessageIndexes1796150000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX "idx_messages_streaming_lease"');
    await q.query('CREATE INDEX "idx_messages_streaming_lease" ON "messages" ("status", "lease_expires_at") WHERE "status" = \'streaming\'');
    await q.query('DROP INDEX "idx_messages_idempotency"');
    await q.query('CREATE INDEX "idx_messages_idempotency" ON "messages" ("conversation_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX "idx_messages_idempotency"');
    await q.query('CREATE INDEX "idx_messages_idempotency" ON "messages" ("conversation_id", "idempotency_key")');
    await q.query('DROP INDEX "idx_messages_streaming_lease"');
    await q.query('CREATE INDEX "idx_messages_streaming_lease" ON "messages" ("status", "lease_expires_at")');
  }
}
