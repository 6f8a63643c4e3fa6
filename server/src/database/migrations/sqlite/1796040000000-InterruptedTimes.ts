import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Data only. Until this release, the sweep at boot stamped the replies a crashed run left
 * `streaming` with its far-future lease cutoff (new Date(8.64e15)) as their `updated_at`, which
 * the API then showed as 5760-09-13 (and a rebuilt stream's token as that time). Those rows get
 * their creation time back: the real end is unknown, and it was no later than the restart.
 * SQLite only: the PostgreSQL sweep never used that cutoff.
 */
export class InterruptedTimes1796040000000 implements MigrationInterface {
  name = 'InterruptedTimes1796040000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query("UPDATE \"messages\" SET \"updated_at\" = \"created_at\" WHERE \"status\" = 'interrupted' AND \"updated_at\" >= '5000-01-01'");
  }

  async down(): Promise<void> {
    // Nothing to undo: the far-future times were never meant to be there.
  }
}
