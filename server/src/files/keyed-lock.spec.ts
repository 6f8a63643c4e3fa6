import { KeyedLock } from './keyed-lock.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('KeyedLock', () => {
  it('runs tasks of one key in order, one at a time, even when one fails', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const task = (name: string, fail = false) => async () => {
      log.push(`${name}:start`);
      await tick();
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
