import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countTokens as exact } from 'gpt-tokenizer';
import { countTokens } from '../chat/token-count.js';
import { loadConfig } from '../config/app-config.js';
import { FileMetrics } from './file-metrics.js';
import { TextExtractor } from './text-extractor.js';

// The worker's token count, through the extractor that runs it (the worker exits unless forked).
describe('extract.worker token count', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-extract-count-'));
  // A deadline of 10 s of the worker's CPU: starting it takes ~1 s on a slow machine, counting these files
  // well under one linearly; quadratically "x" + 100,000 U+3000 alone took minutes.
  const extractor = new TextExtractor(loadConfig({
    NODE_ENV: 'test', DATA_DIR: dir, SESSION_SECRET: 'x'.repeat(40), FILE_EXTRACT_WARM_MS: '0', PDF_TIMEOUT_MS: '10000',
  }), new FileMetrics());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts long runs of spaces, newlines, punctuation, CJK or emoji in linear time, as the chat counts', async () => {
    // Each of these was one piece for BPE: 300 KB of newlines or "x" + 100,000 U+3000 ran past the 30 s deadline.
    const runs = ['\u3000'.repeat(100_000), '\n'.repeat(300_000), '\u00a0'.repeat(32_000), '\t'.repeat(32_000),
      '/\n'.repeat(16_000), '!'.repeat(32_000), '漢'.repeat(32_000), '😀'.repeat(16_000)];
    const text = `x${runs.join('x x')}x`;
    const result = await extractor.extract(Buffer.from(text), '.txt');
    expect(result.text).toBe(text);
    expect(result.tokenCount).toBeGreaterThan(0);
    expect(result.tokenCount).toBeLessThanOrEqual(text.length);
    // The same count as the chat's, which is written separately (this file cannot import TypeScript).
    expect(result.tokenCount).toBe(countTokens(text));
  }, 60_000);

  it('counts ordinary text exactly', async () => {
    const text = `# Notes\n\nLes pastéis\u00a0de Belém 😀\n\n\tcode();  // x\n${'id,name\n'.repeat(50)}${'word '.repeat(2_000)}`;
    const result = await extractor.extract(Buffer.from(text), '.md');
    expect(result.tokenCount).toBe(exact(text, { disallowedSpecial: new Set() }));
  });
});
