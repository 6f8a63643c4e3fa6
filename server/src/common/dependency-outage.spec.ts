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
  });

  it('leaves our own bugs and data errors alone (they stay 500 or their own code)', () => {
    expect(isDependencyOutage(new TypeError('Cannot read properties of undefined'))).toBe(false);
    expect(isDependencyOutage(Object.assign(new Error('duplicate key'), { driverError: withCode('23505') }))).toBe(false);
    expect(isDependencyOutage(withCode('SQLITE_CONSTRAINT'))).toBe(false);
    expect(isDependencyOutage(undefined)).toBe(false);
    expect(isDependencyOutage('ECONNREFUSED')).toBe(false);
  });
});
