import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Search folds ß (and ẞ, lower-cased to it) to "ss", as Unicode's full case folding does: "strasse" finds
 * "Straße" and "STRASSE" finds "straße". The fold is the release before's followed by that one replacement
 * (conversations/title.ts's foldForSearch), so the search text already stored is folded again by replacing it
 * there, in one statement, the same on both databases. `down` leaves the rows as they are: the release before
 * searches them as it would a text that said "ss".
 */
export class SearchFoldsSharpS1796500000000 implements MigrationInterface {
  name = 'SearchFoldsSharpS1796500000000';

  async up(q: QueryRunner): Promise<void> {
    const p = (n: number): string => (q.connection.options.type === 'postgres' ? `$${n}` : '?');
    await q.query(`UPDATE "messages" SET "search_text" = REPLACE("search_text", ${p(1)}, 'ss') WHERE "search_text" LIKE ${p(2)}`, ['ß', '%ß%']);
  }

  async down(): Promise<void> {
    // Nothing to undo: see above.
  }
}
