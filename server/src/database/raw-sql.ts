import type { DataSource, EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';

/** The parts of a better-sqlite3 connection and statement used here. */
interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
  readonly inTransaction: boolean;
  transaction(fn: (work: () => void) => void): (work: () => void) => void;
}

/** Rows for one table of `RawSql.insertTogether`. */
export interface InsertPart {
  target: EntityTarget<ObjectLiteral>;
  rows: ObjectLiteral[];
}

/**
 * What a fixed statement is written with (`RawSql.find`): the entity's table and its columns by
 * property name, escaped as the dialect wants, and the dialect's placeholder of the i-th parameter.
 */
export interface SqlParts {
  table: string;
  col(property: string): string;
  param(index: number): string;
  /** Every column a find reads (`select: false` ones left out), for `SELECT ${q.columns} FROM ${q.table}`. */
  columns: string;
}

/**
 * Whole-row INSERTs and UPDATEs by primary key for the chat's hot path (a turn's rows, a reply's
 * final save), the read of one row by primary key behind every request (the session), and the
 * few statements of a follow-up question (`find`: its conversation, history and counters), as fixed
 * SQL built once per shape from the entity metadata: the columns and their conversions stay
 * TypeORM's (and so the migrations'), only the query building per call goes. On SQLite the
 * statements are prepared once on the connection and run synchronously. TypeORM's query builder
 * cost ~0.6 ms of CPU per chat request, on the path to the first token; its findOneBy of a
 * session 136 µs against 6 µs for the prepared SELECT in a tight loop, and 0.26 ms median in the
 * auth guard at 150 streams (bench scenario 1, docs/performance.md round 10).
 *
 * Within inTransaction(), pass its EntityManager: on PostgreSQL the statement must use the
 * transaction's connection; on SQLite there is only one connection.
 */
/** The rows a better-sqlite3 statement's run() changed. */
function changesOf(result: unknown): number {
  return (result as { changes?: number }).changes ?? 0;
}

export class RawSql {
  private readonly statements = new Map<string, SqliteStatement>();
  private readonly sql = new Map<string, { text: string; columns: ColumnMetadata[] }>();
  private readonly isSqlite: boolean;
  private runInTransaction?: (work: () => void) => void;
  private readonly texts = new Map<string, string>();

  constructor(private readonly ds: DataSource) {
    this.isSqlite = ds.options.type === 'better-sqlite3';
  }

  /** Inserts whole entities (every column, in one statement). */
  insert<T extends ObjectLiteral>(target: EntityTarget<T>, rows: T[], em?: EntityManager): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    const { text, params } = this.insertOf(target, rows);
    return this.run(text, params, em).then(() => undefined);
  }

  /** As `insert`, stored when it returns (throws what SQLite throws); only where `isSynchronous`. */
  insertNow<T extends ObjectLiteral>(target: EntityTarget<T>, rows: T[]): void {
    if (!this.isSqlite) throw new Error('insertNow runs on SQLite only');
    if (rows.length === 0) return;
    const { text, params } = this.insertOf(target, rows);
    this.prepared(text).run(...params);
  }

  /**
   * Runs `work` (this class's `...Now` statements) in one SQLite transaction, before returning:
   * committed, or rolled back and the error thrown. Returns false, running nothing, while another
   * transaction is open on the connection (one of TypeORM's, between its statements): the caller
   * then takes inTransaction(). A first message's turn stored this way instead of through
   * TypeORM's transaction (its query runner, events and promises around BEGIN and COMMIT) costs
   * 0.3-0.5 ms less CPU per chat request (bench/chat-ttft.mjs, docs/performance.md round 20).
   */
  transactionNow(work: () => void): boolean {
    if (!this.isSqlite) throw new Error('transactionNow runs on SQLite only');
    const db = this.connection();
    if (db.inTransaction) return false;
    // better-sqlite3 prepares BEGIN / COMMIT / ROLLBACK once per connection; one wrapper is kept.
    this.runInTransaction ??= db.transaction((fn) => fn());
    this.runInTransaction(work);
    return true;
  }

  /**
   * Inserts whole entities into several tables in one statement, on PostgreSQL: each table's INSERT
   * but the last in a WITH clause of the last. One statement is stored whole or not at all, so this
   * needs no transaction: one round trip instead of four (BEGIN, an INSERT per table, COMMIT) and
   * none of TypeORM's transaction around them. A table's rows may refer to an earlier one's by
   * foreign key (the keys are checked at the statement's end). SQLite: `insertNow` in `transactionNow`.
   */
  async insertTogether(parts: InsertPart[]): Promise<void> {
    if (this.isSqlite) throw new Error('insertTogether runs on PostgreSQL only');
    const filled = parts.filter((p) => p.rows.length > 0);
    if (filled.length === 0) return;
    const metas = filled.map((p) => this.ds.getMetadata(p.target));
    const key = `insert-together:${metas.map((m, i) => `${m.tableName}*${filled[i].rows.length}`).join(',')}`;
    let text = this.texts.get(key);
    if (text === undefined) {
      let first = 0;
      const inserts = metas.map((meta, i) => {
        const shape = this.insertShape(meta.tableName, meta.columns, filled[i].rows.length, first);
        first += meta.columns.length * filled[i].rows.length;
        return shape;
      });
      const last = inserts.pop()!;
      text = inserts.length === 0 ? last : `WITH ${inserts.map((s, i) => `w${i} AS (${s})`).join(', ')} ${last}`;
      this.texts.set(key, text);
    }
    const params: unknown[] = [];
    filled.forEach((part, i) => {
      for (const row of part.rows) for (const c of metas[i].columns) params.push(this.value(c, row[c.propertyName]));
    });
    await this.ds.manager.query(text, params);
  }

  private insertOf<T extends ObjectLiteral>(target: EntityTarget<T>, rows: T[]): { text: string; params: unknown[] } {
    const meta = this.ds.getMetadata(target);
    const key = `insert:${meta.tableName}:${rows.length}`;
    let shape = this.sql.get(key);
    if (!shape) {
      shape = { text: this.insertShape(meta.tableName, meta.columns, rows.length, 0), columns: meta.columns };
      this.sql.set(key, shape);
    }
    const params: unknown[] = [];
    for (const row of rows) for (const c of shape.columns) params.push(this.value(c, row[c.propertyName]));
    return { text: shape.text, params };
  }

  /** `INSERT INTO table (columns) VALUES (...), ...` for `count` rows, its parameters numbered from `first`. */
  private insertShape(table: string, columns: ColumnMetadata[], count: number, first: number): string {
    const d = this.ds.driver;
    let n = first;
    const tuple = (): string => `(${columns.map(() => d.createParameter(`p${n}`, n++)).join(', ')})`;
    const values = Array.from({ length: count }, tuple).join(', ');
    return `INSERT INTO ${d.escape(table)} (${columns.map((c) => d.escape(c.databaseName)).join(', ')}) VALUES ${values}`;
  }

  /**
   * Sets the given properties (undefined ones are left alone) on the row with this primary key;
   * resolves to the rows changed (0: no such row). With `onlyIf`, only while the row's columns hold
   * those values (0 otherwise): in the same statement, no read before it.
   */
  update<T extends ObjectLiteral>(target: EntityTarget<T>, id: string, patch: Partial<T>, em?: EntityManager, onlyIf?: Partial<T>): Promise<number> {
    const { text, params } = this.updateOf(target, id, patch, onlyIf);
    return this.run(text, params, em);
  }

  /**
   * `update` of many rows by primary key in one statement, on PostgreSQL (one round trip and no
   * transaction instead of BEGIN, a statement per row and COMMIT). Every row sets the properties
   * `names` and checks the conditions `conditions`: in a row, a property undefined or null leaves
   * that column as it is, and a condition undefined or null is not checked. Resolves to the ids of
   * the rows changed.
   */
  async updateMany<T extends ObjectLiteral>(
    target: EntityTarget<T>, names: ReadonlyArray<keyof T & string>, conditions: ReadonlyArray<keyof T & string>,
    rows: ReadonlyArray<{ id: string; patch: Partial<T>; onlyIf?: Partial<T> }>, em?: EntityManager,
  ): Promise<Set<string>> {
    if (this.isSqlite) throw new Error('updateMany runs on PostgreSQL only');
    if (rows.length === 0) return new Set();
    const meta = this.ds.getMetadata(target);
    const columnOf = (name: string): ColumnMetadata => {
      const column = meta.findColumnWithPropertyName(name);
      if (!column) throw new Error(`${meta.tableName} has no column for ${name}`);
      return column;
    };
    const primary = meta.primaryColumns[0];
    const set = names.map(columnOf);
    const checked = conditions.map(columnOf);
    // Built for each call, not kept: one text per row count (up to PROGRESS_ROWS_PER_STATEMENT's 1,000 shapes of
    // up to ~60 KB) would hold megabytes for a few statements a second that take microseconds to build.
    const d = this.ds.driver;
    const columns = [primary, ...set, ...checked];
    // Each value cast to its column's type: a VALUES list's parameters are text otherwise.
    const types = columns.map((c) => d.normalizeType(c));
    let n = 0;
    const tuple = (): string => `(${types.map((type) => `${d.createParameter(`p${n}`, n++)}::${type}`).join(', ')})`;
    const v = (i: number): string => d.escape(`v${i}`);
    const sets = set.map((c, i) => `${d.escape(c.databaseName)} = COALESCE(v.${v(i + 1)}, t.${d.escape(c.databaseName)})`);
    const wheres = checked.map((c, i) => `(v.${v(1 + set.length + i)} IS NULL OR t.${d.escape(c.databaseName)} = v.${v(1 + set.length + i)})`);
    const text = `UPDATE ${d.escape(meta.tableName)} AS t SET ${sets.join(', ')} `
      + `FROM (VALUES ${Array.from({ length: rows.length }, tuple).join(', ')}) AS v(${columns.map((_, i) => v(i)).join(', ')}) `
      + `WHERE ${[`t.${d.escape(primary.databaseName)} = v.${v(0)}`, ...wheres].join(' AND ')} RETURNING t.${d.escape(primary.databaseName)} AS id`;
    const params: unknown[] = [];
    for (const row of rows) {
      params.push(row.id);
      for (const c of set) params.push(this.value(c, row.patch[c.propertyName]));
      for (const c of checked) params.push(this.value(c, row.onlyIf?.[c.propertyName]));
    }
    const changed = await this.records(text, params, em);
    return new Set(changed.map((r) => String(r.id)));
  }

  /** True when statements run on this thread and are done when the call returns (SQLite). */
  get isSynchronous(): boolean {
    return this.isSqlite;
  }

  /** As `update`, stored when it returns (throws what SQLite throws); only where `isSynchronous`. */
  updateNow<T extends ObjectLiteral>(target: EntityTarget<T>, id: string, patch: Partial<T>, onlyIf?: Partial<T>): number {
    if (!this.isSqlite) throw new Error('updateNow runs on SQLite only');
    const { text, params } = this.updateOf(target, id, patch, onlyIf);
    return changesOf(this.prepared(text).run(...params));
  }

  private updateOf<T extends ObjectLiteral>(target: EntityTarget<T>, id: string, patch: Partial<T>, onlyIf: Partial<T> = {}): { text: string; params: unknown[] } {
    const meta = this.ds.getMetadata(target);
    const names = Object.keys(patch).filter((k) => patch[k] !== undefined);
    const conditions = Object.keys(onlyIf).filter((k) => onlyIf[k] !== undefined);
    const key = `update:${meta.tableName}:${names.join(',')}${conditions.length > 0 ? `:if:${conditions.join(',')}` : ''}`;
    let shape = this.sql.get(key);
    if (!shape) {
      const columnOf = (name: string): ColumnMetadata => {
        const column = meta.findColumnWithPropertyName(name);
        if (!column) throw new Error(`${meta.tableName} has no column for ${name}`);
        return column;
      };
      const columns = names.map(columnOf);
      const checked = conditions.map(columnOf);
      const primary = meta.primaryColumns[0];
      const d = this.ds.driver;
      const param = (i: number): string => d.createParameter(`p${i}`, i);
      const set = columns.map((c, i) => `${d.escape(c.databaseName)} = ${param(i)}`).join(', ');
      const where = [primary, ...checked].map((c, i) => `${d.escape(c.databaseName)} = ${param(columns.length + i)}`).join(' AND ');
      shape = { text: `UPDATE ${d.escape(meta.tableName)} SET ${set} WHERE ${where}`, columns: [...columns, ...checked] };
      this.sql.set(key, shape);
    }
    const params = shape.columns.slice(0, names.length).map((c) => this.value(c, patch[c.propertyName]));
    params.push(id);
    for (const c of shape.columns.slice(names.length)) params.push(this.value(c, onlyIf[c.propertyName]));
    return { text: shape.text, params };
  }

  /** The row with this primary key as an entity (every column, converted as TypeORM does), or null. */
  async findById<T extends ObjectLiteral>(target: EntityTarget<T>, id: string, em?: EntityManager): Promise<T | null> {
    const meta = this.ds.getMetadata(target);
    const text = this.textOf(target, 'by-id', (q) => `SELECT ${q.columns} FROM ${q.table} WHERE ${q.col(meta.primaryColumns[0].propertyName)} = ${q.param(0)}`);
    let raw: Record<string, unknown> | undefined;
    if (this.isSqlite) {
      raw = this.prepared(text).get(id) as Record<string, unknown> | undefined;
    } else {
      raw = (await (em ?? this.ds.manager).query<Array<Record<string, unknown>>>(text, [id]))[0];
    }
    return raw ? this.hydrate(target, raw) : null;
  }

  /**
   * The rows of a statement built by `build` as entities (a SELECT's, or an `UPDATE … RETURNING`'s):
   * the columns it returns, converted as TypeORM does. `key` names the statement within the entity's table (one key, one statement: it is built
   * once and kept). Parameters that stand for a column's value go through `param` first (dates are
   * text on SQLite).
   */
  async find<T extends ObjectLiteral>(target: EntityTarget<T>, key: string, build: (q: SqlParts) => string, params: unknown[], em?: EntityManager): Promise<T[]> {
    const text = this.textOf(target, key, build);
    const rows = this.isSqlite ? this.prepared(text).all(...params) as Array<Record<string, unknown>> : await this.records(text, params, em);
    return rows.map((raw) => this.hydrate(target, raw));
  }

  /** As `find`, done when it returns (within `transactionNow`, say); only where `isSynchronous`. */
  findNow<T extends ObjectLiteral>(target: EntityTarget<T>, key: string, build: (q: SqlParts) => string, params: unknown[]): T[] {
    if (!this.isSqlite) throw new Error('findNow runs on SQLite only');
    const rows = this.prepared(this.textOf(target, key, build)).all(...params) as Array<Record<string, unknown>>;
    return rows.map((raw) => this.hydrate(target, raw));
  }

  /** A value as `property`'s column stores it, for a parameter that is compared with that column or written to it. */
  param<T extends ObjectLiteral>(target: EntityTarget<T>, property: keyof T & string, value: unknown): unknown {
    const column = this.ds.getMetadata(target).findColumnWithPropertyName(property);
    if (!column) throw new Error(`no column for ${property}`);
    return this.value(column, value);
  }

  /** The statement `build` writes for this database, as `find` runs it under `key` (built once and kept). */
  textOf<T extends ObjectLiteral>(target: EntityTarget<T>, key: string, build: (q: SqlParts) => string): string {
    const meta = this.ds.getMetadata(target);
    const cacheKey = `${meta.tableName}:${key}`;
    let text = this.texts.get(cacheKey);
    if (text === undefined) {
      const d = this.ds.driver;
      text = build({
        table: d.escape(meta.tableName),
        col: (property) => {
          const column = meta.findColumnWithPropertyName(property);
          if (!column) throw new Error(`${meta.tableName} has no column for ${property}`);
          return d.escape(column.databaseName);
        },
        param: (index) => d.createParameter(`p${index}`, index),
        // As TypeORM's finds: a column kept out of reads (`select: false`) is not read.
        columns: meta.columns.filter((c) => c.isSelect).map((c) => d.escape(c.databaseName)).join(', '),
      });
      this.texts.set(cacheKey, text);
    }
    return text;
  }

  /** An entity of the columns in `raw` (by their database names), converted as TypeORM converts what it reads. */
  private hydrate<T extends ObjectLiteral>(target: EntityTarget<T>, raw: Record<string, unknown>): T {
    const meta = this.ds.getMetadata(target);
    const entity = meta.create() as Record<string, unknown>;
    for (const c of meta.columns) {
      if (c.databaseName in raw) entity[c.propertyName] = this.ds.driver.prepareHydratedValue(raw[c.databaseName], c);
    }
    return entity as T;
  }

  private value(column: ColumnMetadata, value: unknown): unknown {
    return this.ds.driver.preparePersistentValue(value ?? null, column);
  }

  /**
   * The rows a statement returns on PostgreSQL, a SELECT's or an `UPDATE … RETURNING`'s alike
   * (TypeORM's `query()` gives the latter as `[rows, count]`).
   */
  private async records(text: string, params: unknown[], em?: EntityManager): Promise<Array<Record<string, unknown>>> {
    const runner = em?.queryRunner ?? this.ds.createQueryRunner();
    try {
      return (await runner.query(text, params, true)).records as Array<Record<string, unknown>>;
    } finally {
      if (!em?.queryRunner) await runner.release();
    }
  }

  /** Runs a statement; resolves to the rows it changed. */
  private async run(text: string, params: unknown[], em?: EntityManager): Promise<number> {
    if (this.isSqlite) return changesOf(this.prepared(text).run(...params));
    // TypeORM answers an UPDATE or DELETE on PostgreSQL with [rows, rowCount] (other statements: rows).
    const raw = await (em ?? this.ds.manager).query(text, params) as unknown;
    return Array.isArray(raw) && raw.length === 2 && typeof raw[1] === 'number' ? raw[1] : 0;
  }

  private connection(): SqliteConnection {
    return (this.ds.driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
  }

  private prepared(text: string): SqliteStatement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.connection().prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }
}
