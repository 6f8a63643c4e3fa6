import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Answers keep what the model did not see of their question's files (`context_notice`, the start event's `context`
 * as JSON; null when every file fit), so that an answer read from history says it as it did live. Added in place,
 * nullable, no backfill (the same SQL on both databases; existing answers have none to tell).
 */
export class MessageContextNotice1796300000000 implements MigrationInterface {
  name = 'MessageContextNotice1796300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "messages" ADD COLUMN "context_notice" text');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "messages" DROP COLUMN "context_notice"');
  }
}
