import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestApp, type TestApp } from '../testing/test-app.js';

/** The SPA as the backend serves it alone (the README's quick start, no nginx in front). */
describe('serving the SPA', () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-spa-'));
    mkdirSync(join(dir, 'media'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Parley</title><app-root></app-root>');
    writeFileSync(join(dir, 'main-ABCDEFGH.js'), 'console.log(1)');
    writeFileSync(join(dir, 'media', 'font-ABCDEFGH.woff2'), 'wOF2');
    t = await createTestApp('sqlite', { CLIENT_DIR: dir });
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers its routes with index.html, never to be cached', async () => {
    for (const path of ['/', '/c/00000000-0000-4000-8000-000000000000', '/some/deep/route', '/docs/v1.2/page']) {
      const res = await t.http().get(path).expect(200);
      expect(res.headers['content-type'], path).toMatch(/^text\/html/);
      expect(res.headers['cache-control'], path).toBe('no-cache');
      expect(res.text).toContain('<app-root>');
    }
  });

  it('serves its hashed files for a year, and a file that is not there is 404, not index.html', async () => {
    const js = await t.http().get('/main-ABCDEFGH.js').expect(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    await t.http().get('/media/font-ABCDEFGH.woff2').expect(200);
    // A stale tab's chunk after a deploy, a missing font, the favicon, a dotfile.
    for (const path of ['/main-ZZZZZZZZ.js', '/chunk-AAAAAAAA.js', '/media/missing.woff2', '/favicon.ico', '/.env']) {
      const res = await t.http().get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers['content-type'], path).not.toMatch(/^text\/html/);
    }
  });
});
