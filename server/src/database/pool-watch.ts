import type { DataSource } from 'typeorm';

/** What PoolWatch reads of node-postgres' Pool (pg-pool 3.x: public counts, the `release` event, `options.max`). */
interface PgPool {
  readonly idleCount: number;
  readonly totalCount: number;
  readonly options: { max: number };
  on(event: 'release', listener: (err: Error | undefined) => void): unknown;
}

/**
 * Whether PostgreSQL's connection pool is busy or stuck. A query that waits for a connection
 * says nothing about the database when the pool is full: every connection may be serving other
 * requests. The health probes then ask this instead of queueing behind them (their SELECT 1
 * waited its turn, past its 2 s, and a busy instance turned unready: under load, every instance
 * at once).
 *
 * A connection given back without an error (`release`) means its query was answered: the
 * database is there. Given back with one, the connection broke (the database gone, a failover).
 */
export class PoolWatch {
  private lastAnsweredAt = Number.NEGATIVE_INFINITY;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly pool: PgPool, private readonly now: () => number = () => performance.now()) {
    pool.on('release', (err) => {
      if (err) return;
      this.lastAnsweredAt = this.now();
      for (const wake of this.waiters) wake();
      this.waiters.clear();
    });
  }

  /** The pool of a PostgreSQL data source; undefined on SQLite (one connection, no pool). */
  static of(dataSource: DataSource): PoolWatch | undefined {
    if (dataSource.options.type !== 'postgres') return undefined;
    const pool = (dataSource.driver as unknown as { master?: PgPool }).master;
    return pool && typeof pool.on === 'function' ? new PoolWatch(pool) : undefined;
  }

  /** Every connection is out and no more may be opened: a new query waits for one. */
  get isFull(): boolean {
    return this.pool.idleCount === 0 && this.pool.totalCount >= this.pool.options.max;
  }

  /** A query was answered within the last `ms`. */
  answeredWithin(ms: number): boolean {
    return this.now() - this.lastAnsweredAt <= ms;
  }

  /** Resolves when the next query is answered; `cancel` forgets the wait (a probe that ended otherwise). */
  nextAnswer(): { answered: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const answered = new Promise<void>((resolve) => { wake = resolve; });
    this.waiters.add(wake);
    return { answered, cancel: () => { this.waiters.delete(wake); } };
  }
}
