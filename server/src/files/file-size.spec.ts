import { formatSize } from './file-size.js';

describe('formatSize', () => {
  it('states a size in the unit that fits it, with one decimal at most', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1000)).toBe('1000 B');
    expect(formatSize(1536)).toBe('1.5 KB');
    expect(formatSize(10 * 1024 * 1024)).toBe('10 MB');
    expect(formatSize(10 * 1024 * 1024 + 1)).toBe('10 MB');
    expect(formatSize(1.25 * 1024 * 1024)).toBe('1.3 MB');
    expect(formatSize(5 * 1024 ** 3)).toBe('5 GB');
  });
});
