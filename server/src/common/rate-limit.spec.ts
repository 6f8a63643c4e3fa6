import type { AppConfig } from '../config/app-config.js';
import { MemoryThrottlerStorage } from './memory-throttler-storage.js';
import { addressKey, AuthFailureLimit } from './rate-limit.js';

describe('addressKey', () => {
  it('counts an IPv4 client by its address, an IPv6 one by its /64', () => {
    expect(addressKey('203.0.113.7')).toBe('ip:203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('ip:203.0.113.7');
    // Every address of one /64 is one client: it cannot take a fresh address per request.
    expect(addressKey('2001:db8:1:2::1')).toBe('ip6:2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:ffff:ffff:ffff:fffe')).toBe('ip6:2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:0:0:0:1')).toBe('ip6:2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:3::1')).not.toBe(addressKey('2001:db8:1:2::1'));
    expect(addressKey(undefined)).toBe('ip:unknown');
  });
});

describe('AuthFailureLimit', () => {
  const config = { rateLimits: { requestsPerMinute: 3 } } as AppConfig;

  it('answers 429 past the budget, then from memory while blocked: no more counting in the shared storage', async () => {
    const storage = new MemoryThrottlerStorage();
    const increments = vi.spyOn(storage, 'increment');
    const limit = new AuthFailureLimit(storage, config);
    for (let i = 0; i < 3; i++) expect(await limit.count('2001:db8::1')).toBeUndefined();
    const refused = await limit.count('2001:db8::2'); // the same /64
    expect(refused?.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(refused?.headers?.['Retry-After']).toMatch(/^\d+$/);
    expect(increments).toHaveBeenCalledTimes(4);
    for (let i = 0; i < 5; i++) expect((await limit.count('2001:db8::3'))?.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(increments).toHaveBeenCalledTimes(4);
    // Another client is counted on its own.
    expect(await limit.count('198.51.100.1')).toBeUndefined();
  });

  it('leaves the refusal a 401 when the storage is away', async () => {
    const storage = new MemoryThrottlerStorage();
    vi.spyOn(storage, 'increment').mockRejectedValue(new Error('Redis is away'));
    expect(await new AuthFailureLimit(storage, config).count('203.0.113.7')).toBeUndefined();
  });
});
