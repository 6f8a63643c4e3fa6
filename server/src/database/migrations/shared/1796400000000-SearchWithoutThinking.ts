import type { MigrationInterface, QueryRunner } from 'typeorm';

const BATCH = 500;

/*
 * The functions as they were when this migration was written (conversations/think-block.ts's withoutThinking and
 * conversations/title.ts's foldForSearch), frozen here: a migration must do tomorrow what it did the day it shipped.
 */
function withoutThinking(content: string): string {
  const opening = /^\s*<think>/.exec(content);
  if (!opening) return content;
  const end = content.indexOf('</think>', opening[0].length);
  return end === -1 ? '' : content.slice(end + '</think>'.length).trimStart();
}

function fold(text: string): string {
  return text.replace(/\p{M}+/gu, '').normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/ς/g, 'σ');
}

/**
 * Search reads an answer without the reasoning a model put before it (`<think>…</think>`): the answers already
 * stored with such a block are folded again without it. Only finished answers whose text has the tag are read
 * (streaming ones are folded when they end), in batches by id; the same SQL on both databases but for its
 * parameters. `down` leaves the rows as they are: their search text without the reasoning is the better one
 * for the release before too.
 */
export class SearchWithoutThinking1796400000000 implements MigrationInterface {
  name = 'SearchWithoutThinking1796400000000';

  async up(q: QueryRunner): Promise<void> {
    const p = (n: number): string => (q.connection.options.type === 'postgres' ? `$${n}` : '?');
    let after = '';
    for (;;) {
      const rows = await q.query(
        `SELECT "id", "content" FROM "messages" WHERE "role" = 'assistant' AND "status" <> 'streaming' AND "content" LIKE '%<think>%' `
        + `AND "id" > ${p(1)} ORDER BY "id" LIMIT ${BATCH}`,
        [after],
      ) as Array<{ id: string; content: string }>;
      for (const row of rows) {
        const said = withoutThinking(row.content);
        if (said !== row.content) await q.query(`UPDATE "messages" SET "search_text" = ${p(1)} WHERE "id" = ${p(2)}`, [fold(said), row.id]);
      }
      if (rows.length < BATCH) return;
      after = rows[rows.length - 1].id;
    }
  }

  async down(): Promise<void> {
    // Nothing to undo: see above.
  }
}
