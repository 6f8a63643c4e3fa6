import { EventEmitter } from 'node:events';
import { PoolWatch } from './pool-watch.js';

class FakePool extends EventEmitter {
  idleCount = 0;
  totalCount = 2;
  waitingCount = 0;
  options = { max: 2 };
}

describe('PoolWatch', () => {
  it('is full when no connection is idle and no more may be opened', () => {
    const pool = new FakePool();
    const watch = new PoolWatch(pool);
    expect(watch.isFull).toBe(true);
    pool.idleCount = 1;
    expect(watch.isFull).toBe(false);
    pool.idleCount = 0;
    pool.totalCount = 1;
    expect(watch.isFull).toBe(false);
  });

  it('counts a connection given back without an error as an answer, and one given back with an error as none', async () => {
    let now = 1_000;
    const pool = new FakePool();
    const watch = new PoolWatch(pool, () => now);
    expect(watch.answeredWithin(2_000)).toBe(false);
    pool.emit('release', new Error('Connection terminated unexpectedly'));
    expect(watch.answeredWithin(2_000)).toBe(false);
    const next = watch.nextAnswer();
    pool.emit('release', undefined);
    await next.answered;
    now += 2_000;
    expect(watch.answeredWithin(2_000)).toBe(true);
    now += 1;
    expect(watch.answeredWithin(2_000)).toBe(false);
  });

  it('forgets a cancelled wait', () => {
    const pool = new FakePool();
    const watch = new PoolWatch(pool);
    let isWoken = false;
    const next = watch.nextAnswer();
    void next.answered.then(() => { isWoken = true; });
    next.cancel();
    pool.emit('release', undefined);
    return Promise.resolve().then(() => { expect(isWoken).toBe(false); });
  });
});
