import type { QueryRunner } from 'typeorm';

const BATCH = 500;

/**
 * The fold of migration MessageSearch1796042653614, frozen as it was then (conversations/title.ts's
 * foldForSearch, which new rows use: a later change to that fold needs a migration that folds
 * every row again).
 */
function fold(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/ς/g, 'σ');
}

/** Folds the text of every finished message into `search_text`, in batches by id. */
export async function backfillSearchText(q: QueryRunner, param: (n: number) => string): Promise<void> {
  let after = '';
  for (;;) {
    const rows = await q.query(
      `SELECT "id", "content" FROM "messages" WHERE "status" <> 'streaming' AND "id" > ${param(1)} ORDER BY "id" LIMIT ${BATCH}`,
      [after],
    ) as Array<{ id: string; content: string }>;
    for (const row of rows) {
      await q.query(`UPDATE "messages" SET "search_text" = ${param(1)} WHERE "id" = ${param(2)}`, [fold(row.content), row.id]);
    }
    if (rows.length < BATCH) return;
    after = rows[rows.length - 1].id;
  }
}
