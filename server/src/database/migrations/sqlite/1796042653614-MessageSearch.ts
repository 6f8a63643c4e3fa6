import type { MigrationInterface, QueryRunner } from 'typeorm';
import { backfillSearchText } from '../search-backfill.js';

/**
 * Messages get `search_text`: their text as search compares it (any case, no accents), so the
 * sidebar's search finds conversations by what was said in them, by SQL, the same on both
 * databases. Existing messages are folded here (streaming ones when they end).
 */
export class MessageSearch1796042653614 implements MigrationInterface {
  name = 'MessageSearch1796042653614';

  async up(q: QueryRunner): Promise<void> {
    // Added in place (the generated migration rebuilt the whole table to add one nullable column).
    await q.query('ALTER TABLE "messages" ADD COLUMN "search_text" text');
    await backfillSearchText(q, () => "?");
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "messages" DROP COLUMN "search_text"');
  }
}
