import { randomBytes } from 'node:crypto';
import type { AppConfig } from '../config/app-config.js';
import { RedisConnection } from './redis-connection.js';
import { DistributedLock } from './redis-lock.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DistributedLock', () => {
  /** This run's REDIS_PREFIX (a deployment of its own); its locks are under `${prefix}lock:`. */
  const prefix = `parley:test:${randomBytes(6).toString('hex')}:`;
  const connections: RedisConnection[] = [];
  async function connection(redisUrl: string | undefined = REDIS_URL, redisPrefix = prefix): Promise<RedisConnection> {
    const c = new RedisConnection({ redisUrl, redisPrefix, instanceId: 'lock-test' } as AppConfig);
    await c.onModuleInit();
    connections.push(c);
    return c;
  }
  afterAll(async () => { for (const c of connections) await c.onApplicationShutdown(); });

  /** Two tasks on the same key never overlap; returns the order in which they ran. */
  async function race(a: DistributedLock, b: DistributedLock, key = 'k'): Promise<string[]> {
    const log: string[] = [];
    const task = (name: string) => async () => { log.push(`${name}:in`); await sleep(50); log.push(`${name}:out`); };
    await Promise.all([a.run(key, task('a')), b.run(key, task('b')), a.run(key, task('c'))]);
    return log;
  }
  const isSerial = (log: string[]) => log.every((e, i) => (i % 2 === 0 ? e.endsWith(':in') : e === log[i - 1].replace(':in', ':out')));

  it('serialises one key across two instances (two connections)', async () => {
    const log = await race(new DistributedLock(await connection()), new DistributedLock(await connection()));
    expect(log).toHaveLength(6);
    expect(isSerial(log)).toBe(true);
  });

  it('lets different keys run at once, and frees the key when a task throws', async () => {
    const lock = new DistributedLock(await connection());
    const started = Date.now();
    await Promise.all([lock.run('x', () => sleep(100)), lock.run('y', () => sleep(100))]);
    expect(Date.now() - started).toBeLessThan(190);
    await expect(lock.run('x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await lock.run('x', () => Promise.resolve('free'))).toBe('free');
  });

  it('takes over a key whose holder died once its ttl passed', async () => {
    const c = await connection();
    await c.client!.set(`${prefix}lock:dead`, 'someone-else', 'PX', 200);
    const lock = new DistributedLock(c, { waitMs: 2_000 });
    expect(await lock.run('dead', () => Promise.resolve('mine'))).toBe('mine');
  });

  it('keeps deployments apart: a lock held under one REDIS_PREFIX does not block another\'s', async () => {
    const mine = new DistributedLock(await connection());
    // Another deployment on the same Redis, using the same lock key (e.g. the same stored object).
    const theirs = new DistributedLock(await connection(REDIS_URL, `${prefix}other:`), { waitMs: 2_000 });
    const log: string[] = [];
    let release!: () => void;
    const held = mine.run('shared', () => { log.push('mine:in'); return new Promise<void>((r) => { release = r; }); });
    await vi.waitFor(() => expect(log).toEqual(['mine:in']));
    // Theirs runs while mine is held; under one prefix it would wait for the release.
    await theirs.run('shared', () => { log.push('theirs'); return Promise.resolve(); });
    release();
    await held;
    expect(log).toEqual(['mine:in', 'theirs']);
    expect(await (await connection()).client!.exists(`${prefix}lock:shared`, `${prefix}other:lock:shared`)).toBe(0);
  });

  it('works in-process without Redis', async () => {
    const lock = new DistributedLock(await connection(undefined));
    expect(isSerial(await race(lock, lock))).toBe(true);
  });

  it('runs the tasks of one key in order even when one fails, and other keys do not wait', async () => {
    const lock = new DistributedLock(await connection(undefined));
    const log: string[] = [];
    const task = (name: string, fail = false) => async () => {
      log.push(`${name}:start`);
      await sleep(5);
      log.push(`${name}:end`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([lock.run('k', task('a', true)), lock.run('k', task('b')), lock.run('other', task('c'))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(log.indexOf('b:start')).toBeGreaterThan(log.indexOf('a:end'));
    expect(log.indexOf('c:start')).toBeLessThan(log.indexOf('a:end'));
  });
});
