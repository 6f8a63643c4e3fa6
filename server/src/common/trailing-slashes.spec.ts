import { withoutTrailingSlashes } from './trailing-slashes.js';

describe('withoutTrailingSlashes', () => {
  it('drops the trailing slashes only, as /\\/+$/ did', () => {
    for (const path of ['', '/', '///', '/api/v1/chat', '/api/v1/chat/', '/api/v1/chat///', '//a//b//', `/${'/'.repeat(50)}x`, 'x/']) {
      expect(withoutTrailingSlashes(path)).toBe(path.replace(/\/+$/, ''));
    }
  });

  it('takes linear time on a long run of slashes, ended by another character or not', () => {
    const started = process.cpuUsage();
    for (const path of [`${'/'.repeat(1_000_000)}x`, '/'.repeat(1_000_000)]) withoutTrailingSlashes(path);
    const { user, system } = process.cpuUsage(started);
    expect((user + system) / 1000).toBeLessThan(100);
  });
});
