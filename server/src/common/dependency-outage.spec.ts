import { isDependencyOutage } from './dependency-outage.js';

const withCode = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

describe('isDependencyOutage', () => {
  it('recognises an unreachable PostgreSQL or Redis, also wrapped by TypeORM', () => {
    expect(isDependencyOutage(withCode('ECONNREFUSED'))).toBe(true);
    expect(isDependencyOutage(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDependencyOutage(Object.assign(new Error('query failed'), { driverError: withCode('57P01') }))).toBe(true); // admin shutdown
    expect(isDependencyOutage(Object.assign(new Error('query failed'), { driverError: withCode('08006') }))).toBe(true);
    expect(isDependencyOutage(new Error('x', { cause: withCode('ETIMEDOUT') }))).toBe(true);
    expect(isDependencyOutage(Object.assign(new Error('Reached the max retries per request limit (which is 1).'), { name: 'MaxRetriesPerRequestError' }))).toBe(true);
    expect(isDependencyOutage(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(true);
    // A database closed to connections (55000 by its message), gone (3D000), or its role refused (28P01).
    expect(isDependencyOutage(withCode('55000', 'database "parley" is not currently accepting connections'))).toBe(true);
    expect(isDependencyOutage(withCode('3D000', 'database "parley" does not exist'))).toBe(true);
    expect(isDependencyOutage(withCode('28P01', 'password authentication failed for user "parley"'))).toBe(true);
    // What a retry may not meet again: a lock held elsewhere past lock_timeout, a cancelled statement, a serialization failure, a deadlock.
    for (const code of ['55P03', '57014', '40001', '40P01']) expect(isDependencyOutage(Object.assign(new Error('query failed'), { driverError: withCode(code) }))).toBe(true);
  });

  it('leaves our own bugs and data errors alone (they stay 500 or their own code)', () => {
    expect(isDependencyOutage(new TypeError('Cannot read properties of undefined'))).toBe(false);
    expect(isDependencyOutage(Object.assign(new Error('duplicate key'), { driverError: withCode('23505') }))).toBe(false);
    expect(isDependencyOutage(withCode('SQLITE_CONSTRAINT'))).toBe(false);
    // 55000 is also an ordinary error of a query ("lastval is not yet defined in this session"): not an outage.
    expect(isDependencyOutage(withCode('55000', 'lastval is not yet defined in this session'))).toBe(false);
    expect(isDependencyOutage(undefined)).toBe(false);
    expect(isDependencyOutage('ECONNREFUSED')).toBe(false);
  });
});
