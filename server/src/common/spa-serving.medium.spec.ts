import { execFileSync } from 'node:child_process';
import { get, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createTestApp, type TestApp } from '../testing/test-app.js';

/** A bundle big enough to be worth compressing. */
const BUNDLE = `export const words = ${JSON.stringify(Array.from({ length: 400 }, (_, i) => `word ${i}`))};\n`;

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
    // A bundle as the build leaves it (scripts/precompress.mjs): with its Brotli and gzip copies.
    writeFileSync(join(dir, 'chunk-ABCDEFGH.js'), BUNDLE);
    execFileSync(process.execPath, [join(__dirname, '..', '..', '..', 'scripts', 'precompress.mjs'), dir]);
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

  it('sends a bundle as the build compressed it, Brotli or gzip as the browser takes them, else as is; never the API', async () => {
    // The build script wrote the copies, and none for a file too small to gain (index.html here).
    expect(['chunk-ABCDEFGH.js.br', 'chunk-ABCDEFGH.js.gz', 'index.html.br'].map((f) => existsSync(join(dir, f)))).toEqual([true, true, false]);
    // The bytes as sent (supertest would decompress them first).
    const fetch = (accept: string): Promise<{ status?: number; headers: IncomingHttpHeaders; body: Buffer }> => new Promise((resolve, reject) => {
      const { port } = t.app.getHttpServer().address() as AddressInfo;
      get({ host: '127.0.0.1', port, path: '/chunk-ABCDEFGH.js', headers: { 'Accept-Encoding': accept } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
    const raw = (res: { body: Buffer }): Buffer => res.body;
    for (const [accept, encoding] of [['gzip, deflate, br', 'br'], ['gzip', 'gzip'], ['br;q=0.5, gzip', 'gzip'], ['identity', undefined], ['br;q=0, gzip;q=0', undefined]] as const) {
      const res = await fetch(accept);
      expect([accept, res.status, res.headers['content-encoding']]).toEqual([accept, 200, encoding]);
      expect(res.headers['content-type'], accept).toMatch(/javascript/);
      expect(res.headers.vary, accept).toMatch(/Accept-Encoding/);
      expect(res.headers['cache-control'], accept).toBe('public, max-age=31536000, immutable');
      const body = encoding === 'br' ? brotliDecompressSync(raw(res)) : encoding === 'gzip' ? gunzipSync(raw(res)) : raw(res);
      expect(body.toString(), accept).toBe(BUNDLE);
      if (encoding) expect(raw(res).length, accept).toBeLessThan(BUNDLE.length / 3);
    }
    // HEAD alike; the API's answers are never compressed here (nginx compresses them in production).
    const head = await t.http().head('/chunk-ABCDEFGH.js').set('Accept-Encoding', 'br').expect(200);
    expect(head.headers['content-encoding']).toBe('br');
    const api = await t.http().get('/api/v1/health').set('Accept-Encoding', 'br, gzip').expect(200);
    expect(api.headers['content-encoding']).toBeUndefined();
    // A Range past the end of the compressed copy: the 416 envelope, not labelled as compressed.
    const past = await t.http().get('/chunk-ABCDEFGH.js').set('Accept-Encoding', 'br').set('Range', 'bytes=99999999-').expect(416);
    expect([past.headers['content-encoding'], past.headers['content-type'], past.body.error?.code]).toEqual([undefined, 'application/json; charset=utf-8', 'VALIDATION_ERROR']);
  });

  it('answers a Range past the end of a file with 416 and the envelope as application/json, not as the file\'s type', async () => {
    for (const path of ['/index.html', '/main-ABCDEFGH.js']) {
      const file = await t.http().get(path).expect(200);
      const res = await t.http().get(path).set('Range', 'bytes=99999999-').expect(416);
      expect(res.headers['content-type'], path).toBe('application/json; charset=utf-8');
      expect(res.body.error, path).toMatchObject({ code: 'VALIDATION_ERROR', request_id: expect.any(String) });
      // Which ranges exist, as RFC 9110 asks; nothing of the file's own representation.
      expect(res.headers['content-range'], path).toMatch(/^bytes \*\/\d+$/);
      expect(res.headers.etag, path).not.toBe(file.headers.etag);
      expect(res.headers['last-modified'], path).toBeUndefined();
      expect(res.headers['cache-control'], path).toBe('no-store');
    }
    // A range that exists is still served.
    const part = await t.http().get('/main-ABCDEFGH.js').set('Range', 'bytes=0-6').expect(206);
    expect(part.text).toBe('console');
  });

  it('answers a path under /api/ with repeated slashes (a base URL ending in /) with the 404 envelope, never index.html', async () => {
    const s = await t.newSession();
    for (const path of ['//api/v1/conversations', '//api/v1/nope', '//api/v1/health', '///api/v1/sessions/current', '//API/v1/conversations', '//api', '//api/']) {
      const res = await t.http().get(path).set('Authorization', `Bearer ${s.token}`);
      expect(res.status, path).toBe(404);
      expect(res.headers['content-type'], path).toBe('application/json; charset=utf-8');
      expect(res.body.error, path).toMatchObject({ code: 'NOT_FOUND', request_id: expect.any(String) });
    }
    // Other methods too (a write is not taken as the SPA's nor anybody's), and the SPA's own routes are unaffected.
    const post = await t.http().post('//api/v1/conversations').set('Authorization', `Bearer ${s.token}`).send({ title: 'x' }).expect(404);
    expect(post.body.error.code).toBe('NOT_FOUND');
    expect((await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200)).body.conversations).toEqual([]);
    // Nor is a path under /metrics (routing is strict: /metrics/ is not the scrape route, and was served index.html).
    for (const path of ['/metrics/', '/metrics/x']) {
      const res = await t.http().get(path);
      expect([res.status, res.headers['content-type']], path).toEqual([404, 'application/json; charset=utf-8']);
    }
    for (const path of ['//c/00000000-0000-4000-8000-000000000000', '/apiary', '/c/api']) {
      const res = await t.http().get(path).expect(200);
      expect(res.headers['content-type'], path).toMatch(/^text\/html/);
    }
  });
});
