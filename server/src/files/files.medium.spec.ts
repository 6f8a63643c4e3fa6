import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRepositoryToken } from '@nestjs/typeorm';
import { In, type Repository } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { dialects } from '../testing/dialects.js';
import { makeEncryptedPdf, makePdf as makePdfWith } from '../testing/pdf-fixtures.js';
import { FileSweepJob } from './file-sweep.job.js';
import { FileUpload } from './file-upload.entity.js';
import { DistributedLock } from '../redis/redis-lock.js';
import { FilesService } from './files.service.js';
import { SessionUploads } from './session-uploads.js';
import { waitFor } from '../testing/wait.js';
import { childrenRunning, isAlive } from '../testing/processes.js';
import { pdfSlots, TextExtractor } from './text-extractor.js';

const MAX_UPLOAD = 1024 * 1024;
const QUOTA = 3 * 1024 * 1024;

interface Part { name: string; value: string | Buffer; filename?: string; contentType?: string }

/** A multipart/form-data body built by hand, so odd filenames reach the server exactly as written. */
function multipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = `----parley${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    // As browsers do (WHATWG): only LF, CR and " are escaped in the filename.
    const filename = p.filename?.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
    const disposition = filename === undefined ? `form-data; name="${p.name}"` : `form-data; name="${p.name}"; filename="${filename}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n`
      + (p.filename === undefined ? '' : `Content-Type: ${p.contentType ?? 'application/octet-stream'}\r\n`) + '\r\n'));
    chunks.push(Buffer.isBuffer(p.value) ? p.value : Buffer.from(p.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

const makePdf = (pages: number, lines = 3) => makePdfWith(pages, lines, (n, l) => `Page ${n}: clause ${l} of the lease`);

const exe = () => Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00', 'latin1'), randomBytes(512)]);

describe.each(dialects())('files API on %s', (dialect) => {
  let t: TestApp;
  let uploadsDir: string;
  let tmpDir: string;
  let rows: Repository<FileUpload>;
  beforeAll(async () => {
    // A fresh session per test: more than the default 60 a minute from one address.
    t = await createTestApp(dialect, { MAX_UPLOAD_BYTES: String(MAX_UPLOAD), SESSION_QUOTA_BYTES: String(QUOTA), RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' });
    uploadsDir = join(t.config.dataDir, 'uploads');
    tmpDir = join(t.config.dataDir, 'tmp');
    rows = t.app.get<Repository<FileUpload>>(getRepositoryToken(FileUpload));
  });
  afterAll(async () => { await t.close(); });

  const stored = () => readdirSync(uploadsDir);
  const temps = () => (existsSync(tmpDir) ? readdirSync(tmpDir) : []);

  function upload(token: string, filename: string, content: Buffer | string, fields: Record<string, string> = {}) {
    const { body, contentType } = multipart([
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: 'file', filename, value: typeof content === 'string' ? Buffer.from(content) : content },
    ]);
    return t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${token}`).set('Content-Type', contentType).send(body);
  }

  function download(token: string, id: string) {
    return t.http().get(`/api/v1/files/${id}/content`).set('Authorization', `Bearer ${token}`).buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
  }

  /** A refusal must leave nothing behind: no row, no stored object, no temp file. */
  async function expectNothingStored(sessionId: string, before: string[]) {
    expect(await rows.countBy({ sessionId })).toBe(0);
    expect(stored().sort()).toEqual(before.sort());
    expect(temps()).toEqual([]);
  }

  describe('accepts each allowed type and returns its text', () => {
    it.each([
      ['notes.txt', 'Plain notes: remember the milk.', 'Plain notes: remember the milk.'],
      ['README.md', '# Title\n\n<b>markup is just text</b>', '# Title\n\n<b>markup is just text</b>'],
      ['script.py', 'def add(a, b):\n    return a + b\n', '```python\ndef add(a, b):\n    return a + b\n```'],
      ['app.js', 'export const x = 1;', '```javascript\nexport const x = 1;\n```'],
      ['data.json', '{"name":"Parley","tags":["a"]}', '```json\n{"name":"Parley","tags":["a"]}\n```'],
      // The model gets the file as written: re-serialised, the id was rounded, 1e400 was null, one "k" was lost.
      ['numbers.json', '{"id": 12345678901234567890, "price": 1.10, "big": 1e400, "k": 1, "k": 2}',
        '```json\n{"id": 12345678901234567890, "price": 1.10, "big": 1e400, "k": 1, "k": 2}\n```'],
      ['overflow.json', '1e309', '```json\n1e309\n```'],
    ])('%s', async (filename, content, text) => {
      const s = await t.newSession();
      const res = await upload(s.token, filename, content).expect(201);
      expect(res.body).toMatchObject({
        file_id: expect.any(String), filename, file_type: filename.slice(filename.lastIndexOf('.')),
        file_size: Buffer.byteLength(content), extracted_text: text, extracted_chars: text.length, token_count: expect.any(Number),
      });
      expect(res.body.pages).toBeUndefined();
      expect(res.body.token_count).toBeGreaterThan(0);
      const detail = await t.http().get(`/api/v1/files/${res.body.file_id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
      expect(detail.body).toMatchObject({ file_id: res.body.file_id, extracted_text: text, message_id: null });
      expect(temps()).toEqual([]);
    });

    it('a UTF-16 text file with its byte order mark (Windows Notepad\'s "Unicode"), either byte order, its line ends made LF', async () => {
      const s = await t.newSession();
      const words = 'Größe: 3 m²\r\nZeile zwei 🙂\r\n';
      const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(words, 'utf16le')]);
      const be = Buffer.from(le);
      be.swap16();
      for (const [name, bytes] of [['le.txt', le], ['be.txt', be]] as const) {
        const res = await upload(s.token, name, bytes).expect(201);
        expect(res.body).toMatchObject({ file_size: bytes.length, extracted_text: 'Größe: 3 m²\nZeile zwei 🙂\n' });
      }
      // A NUL in it is binary all the same.
      const nul = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a\u0000b', 'utf16le')]);
      expect((await upload(s.token, 'nul.txt', nul).expect(415)).body.error.message).toMatch(/NUL/);
    });

    it('a multi-page PDF, with its page count and every page\'s text', async () => {
      const s = await t.newSession();
      const res = await upload(s.token, 'lease.pdf', await makePdf(5)).expect(201);
      expect(res.body).toMatchObject({ file_type: '.pdf', pages: 5 });
      expect(res.body.extracted_text).toContain('Page 1: clause 0 of the lease');
      expect(res.body.extracted_text).toContain('Page 5: clause 2 of the lease');
    });

    it('previews at most 2000 characters of a long text; GET has all of it', async () => {
      const s = await t.newSession();
      const long = 'word '.repeat(2000);
      const res = await upload(s.token, 'long.txt', long).expect(201);
      expect(res.body.extracted_text).toHaveLength(2000);
      expect(res.body.extracted_chars).toBe(long.length);
      const detail = await t.http().get(`/api/v1/files/${res.body.file_id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
      expect(detail.body.extracted_text).toBe(long);
    });
  });

  describe('refuses, with its code and nothing stored', () => {
    it.each([
      ['an encrypted PDF', 'secret.pdf', makeEncryptedPdf, 422, 'FILE_PROCESSING_ERROR', /encrypted/],
      ['a PDF without text (scanned pages)', 'scan.pdf', () => makePdfWith(2, 0, () => ''), 422, 'FILE_PROCESSING_ERROR', /no text to read/],
      ['a broken PDF', 'broken.pdf', () => Promise.resolve(Buffer.from('%PDF-1.4\n%garbage that is not a document\n')), 422, 'FILE_PROCESSING_ERROR', /could not be read/],
      ['an executable named .pdf', 'invoice.pdf', () => Promise.resolve(exe()), 415, 'UNSUPPORTED_FILE_TYPE', /not a PDF/],
      ['an executable named .txt', 'readme.txt', () => Promise.resolve(exe()), 415, 'UNSUPPORTED_FILE_TYPE', /not a text file/],
      // Neither UTF-8 nor Western windows-1252 text (an escape byte), nor Korean in EUC-KR (mostly past ASCII).
      ['invalid UTF-8 named .md', 'notes.md', () => Promise.resolve(Buffer.from([0x41, 0xc3, 0x28, 0x1b, 0x42])), 415, 'UNSUPPORTED_FILE_TYPE', /UTF-8/],
      ['Korean in EUC-KR', 'korean.txt', () => Promise.resolve(Buffer.from([0xc7, 0xd1, 0xb1, 0xb9, 0xbe, 0xee, 0x20, 0xc5, 0xd8, 0xbd, 0xba, 0xc6, 0xae])), 415, 'UNSUPPORTED_FILE_TYPE', /UTF-8/],
      ['JSON that does not parse', 'data.json', () => Promise.resolve(Buffer.from('{"a": tru')), 415, 'UNSUPPORTED_FILE_TYPE', /not valid JSON/],
      ['JSON nested 40,000 deep', 'deep.json', () => Promise.resolve(Buffer.from(`${'['.repeat(40_000)}${']'.repeat(40_000)}`)), 422, 'FILE_PROCESSING_ERROR', /nested deeper than 1000 levels/],
      ['an SVG', 'logo.svg', () => Promise.resolve(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')), 415, 'UNSUPPORTED_FILE_TYPE', /\.svg are not accepted/],
      ['an HTML page', 'page.html', () => Promise.resolve(Buffer.from('<html><script>alert(1)</script></html>')), 415, 'UNSUPPORTED_FILE_TYPE', /\.html/],
      ['an executable', 'setup.exe', () => Promise.resolve(exe()), 415, 'UNSUPPORTED_FILE_TYPE', /\.exe/],
      ['a double extension', 'report.pdf.exe', () => Promise.resolve(exe()), 415, 'UNSUPPORTED_FILE_TYPE', /\.exe/],
      ['a name without extension', 'Makefile', () => Promise.resolve(Buffer.from('all:\n')), 415, 'UNSUPPORTED_FILE_TYPE', /\(none\)/],
      ['an empty file', 'empty.txt', () => Promise.resolve(Buffer.alloc(0)), 400, 'VALIDATION_ERROR', /empty/],
      ['an oversized upload', 'big.txt', () => Promise.resolve(Buffer.alloc(MAX_UPLOAD + 1, 'a')), 413, 'FILE_TOO_LARGE', /larger than the 1 MB limit/],
    ])('%s', async (_case, filename, make, status, code, message) => {
      const s = await t.newSession();
      const before = stored();
      const res = await upload(s.token, filename, await make()).expect(status);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toMatch(message);
      await expectNothingStored(s.id, before);
    });

    it('a file exactly at the size limit is accepted', async () => {
      const s = await t.newSession();
      await upload(s.token, 'edge.txt', Buffer.alloc(MAX_UPLOAD, 'b')).expect(201);
    });

    it('malformed multipart, a missing file, a second file or an unexpected field', async () => {
      const s = await t.newSession();
      const before = stored();
      const post = () => t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${s.token}`);
      const noBoundary = await post().set('Content-Type', 'multipart/form-data').send('x').expect(400);
      expect(noBoundary.body.error.code).toBe('VALIDATION_ERROR');
      const truncated = multipart([{ name: 'file', filename: 'a.txt', value: 'hello' }]);
      await post().set('Content-Type', truncated.contentType).send(truncated.body.subarray(0, truncated.body.length - 20)).expect(400);
      const noFile = multipart([{ name: 'conversation_id', value: '00000000-0000-4000-8000-000000000000' }]);
      const missing = await post().set('Content-Type', noFile.contentType).send(noFile.body).expect(400);
      expect(missing.body.error.message).toMatch(/file is required/);
      // JSON is not an upload: 415 naming the type it takes.
      const json = await post().send({ file: 'not a file' }).expect(415);
      expect(json.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'Content-Type must be multipart/form-data' });
      const two = multipart([{ name: 'file', filename: 'a.txt', value: 'a' }, { name: 'file', filename: 'b.txt', value: 'b' }]);
      // Said as such, and named as any refused field is (multer's own words were "Malformed upload: Too many files").
      const second = 'Send one file per upload: the part named "file" came more than once';
      expect((await post().set('Content-Type', two.contentType).send(two.body).expect(400)).body.error)
        .toMatchObject({ code: 'VALIDATION_ERROR', message: second, details: { fields: [{ field: 'file', errors: [second] }] } });
      const other = multipart([{ name: 'attachment', filename: 'a.txt', value: 'a' }]);
      const misplaced = 'Unexpected file in the part named "attachment": send the file in a part named "file"';
      expect((await post().set('Content-Type', other.contentType).send(other.body).expect(400)).body.error)
        .toMatchObject({ code: 'VALIDATION_ERROR', message: misplaced, details: { fields: [{ field: 'attachment', errors: [misplaced] }] } });
      const unknown = multipart([{ name: 'admin', value: 'true' }, { name: 'file', filename: 'a.txt', value: 'a' }]);
      await post().set('Content-Type', unknown.contentType).send(unknown.body).expect(400);
      // A field given twice, each time valid: said so (both values are UUIDs), as for a query parameter.
      const id = '00000000-0000-4000-8000-000000000000';
      const twice = multipart([{ name: 'conversation_id', value: id }, { name: 'conversation_id', value: id }, { name: 'file', filename: 'a.txt', value: 'a' }]);
      const once = 'conversation_id must be given once (it was given 2 times)';
      expect((await post().set('Content-Type', twice.contentType).send(twice.body).expect(400)).body.error)
        .toMatchObject({ code: 'VALIDATION_ERROR', message: once, details: { fields: [{ field: 'conversation_id', errors: [once] }] } });
      // An undeclared one given twice is still one that should not exist.
      const extra = multipart([{ name: 'admin', value: '1' }, { name: 'admin', value: '2' }, { name: 'file', filename: 'a.txt', value: 'a' }]);
      expect((await post().set('Content-Type', extra.contentType).send(extra.body).expect(400)).body.error.message).toBe('property admin should not exist');
      await expectNothingStored(s.id, before);
    });

    it('a file part with an empty filename (a form sent with no file chosen) is a missing file, as clearly', async () => {
      const s = await t.newSession();
      const before = stored();
      const post = (body: { body: Buffer; contentType: string }) => t.http().post('/api/v1/files/upload')
        .set('Authorization', `Bearer ${s.token}`).set('Content-Type', body.contentType).send(body.body);
      const missing = await post(multipart([{ name: 'conversation_id', value: '00000000-0000-4000-8000-000000000000' }])).expect(400);
      const boundary = `----parley${randomBytes(8).toString('hex')}`;
      const raw = (headers: string, content: string) => ({
        body: Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename=""\r\n${headers}\r\n${content}\r\n--${boundary}--\r\n`),
        contentType: `multipart/form-data; boundary=${boundary}`,
      });
      // As a browser sends it (typed application/octet-stream, empty), untyped, and untyped with content.
      for (const [headers, content] of [['Content-Type: application/octet-stream\r\n', ''], ['', ''], ['', 'some text']]) {
        const res = await post(raw(headers, content)).expect(400);
        expect(res.body.error, JSON.stringify(headers)).toEqual({ ...missing.body.error, timestamp: expect.any(String), request_id: expect.any(String) });
        expect(res.body.error.code).toBe('VALIDATION_ERROR');
      }
      await expectNothingStored(s.id, before);
    });

    it.each(['__proto__[title]', 'constructor[prototype][title]', '__proto__', 'toString', 'conversation_id[constructor]'])(
      'a field named %j (a built-in object property): 400 naming it, nothing stored', async (name) => {
        const s = await t.newSession();
        const before = stored();
        const res = await upload(s.token, 'notes.txt', 'content', { [name]: 'x' }).expect(400);
        const field = name.replace(/\[.*$/, '').replace(/^conversation_id$/, 'conversation_id.constructor');
        expect(res.body.error).toMatchObject({
          code: 'VALIDATION_ERROR', message: `property ${field} should not exist`,
          details: { fields: [{ field, errors: [`property ${field} should not exist`] }] },
        });
        await expectNothingStored(s.id, before);
      });

    it('takes multipart on the upload route only, as routing matches it: not in another case, nor with a trailing slash', async () => {
      const s = await t.newSession();
      const before = stored();
      // No route answers there: 404, as for any other body (it was a 415 naming JSON, though nothing takes one there either).
      for (const [path, status, code] of [['/api/v1/files/upload/', 404, 'NOT_FOUND'], ['/API/v1/Files/Upload', 404, 'NOT_FOUND']] as const) {
        const file = multipart([{ name: 'file', filename: 'path.txt', value: `via ${path}` }]);
        const res = await t.http().post(path).set('Authorization', `Bearer ${s.token}`).set('Content-Type', file.contentType).send(file.body);
        expect([res.status, res.body.error?.code]).toEqual([status, code]);
      }
      expect(stored()).toEqual(before);
      const file = multipart([{ name: 'file', filename: 'path.txt', value: 'via the route' }]);
      await t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${s.token}`).set('Content-Type', file.contentType).send(file.body).expect(201);
    });

    it('a client that aborts mid-upload leaves no temp file and the server keeps serving', async () => {
      const s = await t.newSession();
      const before = stored();
      const { port } = t.app.getHttpServer().address() as AddressInfo;
      const { body, contentType } = multipart([{ name: 'file', filename: 'half.txt', value: Buffer.alloc(600_000, 'x') }]);
      await new Promise<void>((resolve) => {
        const req = httpRequest({
          host: '127.0.0.1', port, method: 'POST', path: '/api/v1/files/upload',
          headers: { 'Content-Type': contentType, 'Content-Length': body.length, Authorization: `Bearer ${s.token}` },
        });
        req.on('error', () => resolve());
        req.on('response', () => resolve());
        req.write(body.subarray(0, 300_000), () => setTimeout(() => { req.destroy(); resolve(); }, 200));
      });
      for (let i = 0; i < 50 && temps().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      await expectNothingStored(s.id, before);
      await t.http().get('/api/v1/health').expect(200);
      await upload(s.token, 'after.txt', 'still fine').expect(201);
    });

    it('a session_id other than the caller\'s, or another session\'s conversation', async () => {
      const alice = await t.newSession();
      const bob = await t.newSession();
      const before = stored();
      const wrongSession = await upload(alice.token, 'a.txt', 'x', { session_id: bob.id }).expect(404);
      expect(wrongSession.body.error.code).toBe('SESSION_NOT_FOUND');
      const bobs = await t.app.get(ConversationsService).create(bob.id, 'Bob\'s');
      const wrongConversation = await upload(alice.token, 'a.txt', 'x', { conversation_id: bobs.id }).expect(404);
      expect(wrongConversation.body.error.code).toBe('CONVERSATION_NOT_FOUND');
      await upload(alice.token, 'a.txt', 'x', { session_id: alice.id }).expect(201);
      expect(stored().length).toBe(before.length + 1);
    });

    it('into a conversation deleted while the file is read: 404 CONVERSATION_NOT_FOUND, as a send in that race (it was a 409)', async () => {
      const s = await t.newSession();
      const conversations = t.app.get(ConversationsService);
      const conversation = await conversations.create(s.id, 'Going away');
      const before = stored();
      const extractor = t.app.get(TextExtractor);
      const extract = extractor.extract.bind(extractor);
      const spy = vi.spyOn(extractor, 'extract').mockImplementation(async (source, fileType, request) => {
        await conversations.remove(s.id, conversation.id);
        return extract(source, fileType, request);
      });
      try {
        const res = await upload(s.token, 'late.txt', 'arrives after its conversation left', { conversation_id: conversation.id }).expect(404);
        expect(res.body.error).toMatchObject({ code: 'CONVERSATION_NOT_FOUND', message: 'Conversation not found' });
      } finally {
        spy.mockRestore();
      }
      expect(stored()).toEqual(before);
      expect((await t.http().get('/api/v1/files').set('Authorization', `Bearer ${s.token}`).expect(200)).body.files).toEqual([]);
    });

    it('over the session quota, counting identical bytes once and every file\'s text', async () => {
      const s = await t.newSession();
      const half = MAX_UPLOAD / 2;
      // A .txt file's text is its content: each new one takes twice its size, the same bytes again their text only.
      const bytes = (c: string, n = half) => Buffer.alloc(n, c);
      await upload(s.token, 'a.txt', bytes('a')).expect(201);
      await upload(s.token, 'b.txt', bytes('b')).expect(201);
      await upload(s.token, 'a-again.txt', bytes('a')).expect(201); // same bytes: only its text is new
      const before = stored();
      const late = await upload(s.token, 'c.txt', bytes('c')).expect(413);
      expect(late.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota_bytes: QUOTA, used_bytes: 5 * half } });
      expect(stored()).toEqual(before);
      expect(await t.app.get(FilesService).usage(s.id)).toBe(5 * half);
      await upload(s.token, 'b-again.txt', bytes('b')).expect(201); // exactly full
      // A full quota refuses before the body is even stored.
      const early = await upload(s.token, 'f.txt', 'f').expect(413);
      expect(early.body.error.code).toBe('QUOTA_EXCEEDED');
      expect(temps()).toEqual([]);
      expect(await rows.countBy({ sessionId: s.id })).toBe(4);
    });

    it('the same content uploaded again and again: refused past the quota, changing nothing', async () => {
      const s = await t.newSession();
      const files = t.app.get(FilesService);
      const size = 400 * 1024;
      const content = Buffer.alloc(size, 'x');
      const list = async () => (await t.http().get('/api/v1/files').set('Authorization', `Bearer ${s.token}`).expect(200)).body.files as { file_id: string }[];
      // The first copy stores bytes and text (2 × 400 KB); each one after adds its own text (400 KB): 6 copies fit in 3 MB, a 7th would not.
      for (let i = 0; i < 6; i++) await upload(s.token, `copy-${i}.txt`, content).expect(201);
      const used = 7 * size;
      const listed = await list();
      const rowsBefore = await rows.find({ where: { sessionId: s.id }, order: { id: 'ASC' } });
      const storedBefore = stored();
      for (let i = 0; i < 3; i++) {
        // Under the quota still (so received and read), but its text would pass it.
        const refused = await upload(s.token, 'one-more.txt', content).expect(413);
        expect(refused.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota_bytes: QUOTA, used_bytes: used } });
      }
      expect(await list()).toEqual(listed);
      expect(listed).toHaveLength(6);
      expect(await rows.find({ where: { sessionId: s.id }, order: { id: 'ASC' } })).toEqual(rowsBefore);
      expect(stored().sort()).toEqual(storedBefore.sort());
      expect(temps()).toEqual([]);
      expect(await files.usage(s.id)).toBe(used);

      // Deleting one copy frees its text: one more copy fits again, and a small new file after it.
      await t.http().delete(`/api/v1/files/${listed[0].file_id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
      await upload(s.token, 'copy-again.txt', content).expect(201);
      await upload(s.token, 'small.txt', 'still room for this').expect(201);
      expect(await files.usage(s.id)).toBe(used + 2 * Buffer.byteLength('still room for this'));
    });

    it('counts the text in UTF-8 bytes, on both databases', async () => {
      const s = await t.newSession();
      const text = 'héllo wörld 😀';
      await upload(s.token, 'utf8.txt', text).expect(201);
      expect(await t.app.get(FilesService).usage(s.id)).toBe(2 * Buffer.byteLength(text));
    });

    it('holds the quota against concurrent uploads of one session', async () => {
      const s = await t.newSession();
      // A .txt file takes twice its size (its bytes and its text): 0.9 MB each.
      const files = ['p', 'q', 'r', 's'].map((c) => Buffer.alloc(Math.floor(0.45 * MAX_UPLOAD), c));
      // Two first, one after the other; then two at once, as many as a session may have in flight.
      for (const [i, b] of files.slice(0, 2).entries()) await upload(s.token, `part-${i}.txt`, b).expect(201);
      const results = await Promise.all(files.slice(2).map((b, i) => upload(s.token, `part-${i + 2}.txt`, b)));
      const statuses = results.map((r) => r.status).sort();
      // 3 × 0.9 MB fit in 3 MB, a fourth would not: both passed the early check, exactly one is stored, whatever the order.
      expect(statuses).toEqual([201, 413]);
      expect(await t.app.get(FilesService).usage(s.id)).toBeLessThanOrEqual(QUOTA);
      expect(await rows.countBy({ sessionId: s.id })).toBe(3);
      expect(temps()).toEqual([]);
    });
  });

  describe('uploads in flight per session', () => {
    /** An upload whose body is sent up to its last bytes and then held: in flight until `finish` or `abort`. */
    function heldUpload(token: string, filename: string, content: Buffer = Buffer.alloc(64 * 1024, 'h')) {
      const { port } = t.app.getHttpServer().address() as AddressInfo;
      const { body, contentType } = multipart([{ name: 'file', filename, value: content }]);
      const req = httpRequest({
        host: '127.0.0.1', port, method: 'POST', path: '/api/v1/files/upload',
        headers: { 'Content-Type': contentType, 'Content-Length': body.length, Authorization: `Bearer ${token}` },
      });
      const response = new Promise<{ status: number; body: string }>((resolve) => {
        req.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => { text += c; });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', () => resolve({ status: 0, body: '' }));
      });
      req.write(body.subarray(0, body.length - 100));
      return {
        finish: () => { req.end(body.subarray(body.length - 100)); return response; },
        abort: () => req.destroy(),
      };
    }

    it('a third upload while two of the session\'s are in flight is 429 with Retry-After before anything is stored; others are unaffected', async () => {
      const s = await t.newSession();
      const other = await t.newSession();
      const slots = t.app.get(SessionUploads);
      const before = stored();
      const first = heldUpload(s.token, 'first.txt');
      const second = heldUpload(s.token, 'second.txt');
      onTestFinished(() => { first.abort(); second.abort(); });
      await waitFor('both uploads to be in flight', () => temps().length === 2 && slots.inFlightFor(s.id) === 2);

      const refused = await upload(s.token, 'third.txt', 'one too many').expect(429);
      expect(refused.body.error).toMatchObject({
        code: 'RATE_LIMIT_EXCEEDED', message: 'Two of your files are still being read; try again when they are done',
        details: { limit: 2 },
      });
      expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      // Nothing of it: no row, no stored object, no temp file of its own, no quota used.
      expect(await rows.countBy({ sessionId: s.id })).toBe(0);
      expect(stored()).toEqual(before);
      expect(temps().length).toBe(2);
      expect(await t.app.get(FilesService).usage(s.id)).toBe(0);
      expect(slots.inFlightFor(s.id)).toBe(2);

      // Another session has its own two.
      await upload(other.token, 'other.txt', 'mine').expect(201);

      // One done: the next is accepted. One dropped by its client: its slot is back too.
      expect((await first.finish()).status).toBe(201);
      await waitFor('the finished upload to give its slot back', () => slots.inFlightFor(s.id) === 1);
      await upload(s.token, 'third.txt', 'now it fits').expect(201);
      second.abort();
      await waitFor('the aborted upload to give its slot back', () => slots.inFlightFor(s.id) === 0 && temps().length === 0);
      expect((await rows.findBy({ sessionId: s.id })).map((r) => r.filename).sort()).toEqual(['first.txt', 'third.txt']);
    });

    it('an upload whose client leaves while its file waits to be read is dropped from the line: nothing stored or charged', async () => {
      const extractor = t.app.get(TextExtractor);
      const blocker = await t.newSession();
      const leaver = await t.newSession();
      // A PDF takes the only (or every) PDF slot, its process frozen.
      const slots = pdfSlots();
      const blocking = await Promise.all(Array.from({ length: slots - 1 }, async () => (await t.newSession()).token));
      // Long enough (a second or more of CPU) to be frozen while it is read; the process started in advance is frozen too.
      const slow = await makePdf(150, 40);
      const held = [blocker.token, ...blocking].map((token) => upload(token, 'held.pdf', slow).then((r) => r));
      await waitFor('the PDF slots taken', () => (extractor.running >= slots ? true : undefined), 10_000, 2);
      const frozen = childrenRunning('extract.worker');
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
      try {
        const waiting = heldUpload(leaver.token, 'waits.pdf', await makePdf(1));
        void waiting.finish();
        await waitFor('the file in line', () => (extractor.waiting > 0 ? true : undefined), 10_000, 5);
        waiting.abort();
        await waitFor('the file out of the line', () => (extractor.waiting === 0 ? true : undefined), 10_000, 5);
      } finally {
        for (const pid of frozen) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
      }
      for (const done of await Promise.all(held)) expect(done.status).toBe(201);
      await waitFor('its request over', () => (t.app.get(SessionUploads).inFlightFor(leaver.id) === 0 ? true : undefined), 10_000, 5);
      expect(await rows.countBy({ sessionId: leaver.id })).toBe(0);
      const usage = await t.http().get('/api/v1/files').set('Authorization', `Bearer ${leaver.token}`).expect(200);
      expect(usage.body).toMatchObject({ files: [] });
    });

    it('uploads refused for another reason give their slot back', async () => {
      const s = await t.newSession();
      for (let i = 0; i < 3; i++) {
        await upload(s.token, 'setup.exe', 'x').expect(415);
        await upload(s.token, 'empty.txt', '').expect(400);
        await upload(s.token, 'big.txt', Buffer.alloc(MAX_UPLOAD + 1, 'a')).expect(413);
        await upload(s.token, 'a.txt', 'x', { conversation_id: '00000000-0000-4000-8000-000000000000' }).expect(404);
      }
      expect(t.app.get(SessionUploads).inFlightFor(s.id)).toBe(0);
      await upload(s.token, 'a.txt', 'x').expect(201);
      await upload(s.token, 'b.txt', 'y').expect(201);
    });
  });

  describe('names and paths', () => {
    it.each([
      ['../../../etc/passwd.txt', 'passwd.txt'],
      ['..\\..\\boot.ini.md', 'boot.ini.md'],
      ['tab\tand\u0085c1\u009bcontrols.txt', 'tabandc1controls.txt'],
      ['invoice\u202Etxt.md', 'invoicetxt.md'],
      ['\u3164\u115f\uffa0report\u{E0041}\ufe0f.md', 'report.md'],
    ])('%j is kept only as the sanitized name %j', async (raw, clean) => {
      const s = await t.newSession();
      const res = await upload(s.token, raw, 'content').expect(201);
      expect(res.body.filename).toBe(clean);
      const row = await rows.findOneByOrFail({ id: res.body.file_id });
      expect(row.storageKey).toMatch(new RegExp(`^${s.id}_[0-9a-f]{64}\\.(txt|md)$`));
      expect(stored()).toContain(row.storageKey);
      expect(existsSync(join(t.config.dataDir, 'etc'))).toBe(false);
    });

    it('refuses C0 control characters in the part header as malformed, storing nothing', async () => {
      const s = await t.newSession();
      const before = stored();
      const res = await upload(s.token, 'bell\u0007and\u001bescape.txt', 'content').expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      await expectNothingStored(s.id, before);
    });

    it('keeps UTF-8 names and sends them back RFC 6266-encoded, always as an attachment', async () => {
      const s = await t.newSession();
      const html = '<!doctype html><script>alert(document.cookie)</script>';
      const res = await upload(s.token, 'résumé "final".md', html).expect(201);
      expect(res.body.filename).toBe('résumé _final_.md');
      expect(res.body.extracted_text).toBe(html);
      const dl = await download(s.token, res.body.file_id).expect(200);
      expect(dl.headers['content-type']).toBe('application/octet-stream');
      expect(dl.headers['content-disposition']).toBe('attachment; filename="r_sum_ _final_.md"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20_final_.md');
      expect(dl.headers['x-content-type-options']).toBe('nosniff');
      expect(dl.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
      expect((dl.body as Buffer).toString()).toBe(html);
    });

    it('answers ids that are not UUIDs with 400, not with a path lookup', async () => {
      const s = await t.newSession();
      for (const id of ['..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'x'.repeat(40)]) {
        await t.http().get(`/api/v1/files/${id}/content`).set('Authorization', `Bearer ${s.token}`).expect(400);
      }
    });
  });

  describe('ownership and lifecycle', () => {
    it('another session\'s file is 404 exactly like a missing one, on every route', async () => {
      const alice = await t.newSession();
      const bob = await t.newSession();
      const { body } = await upload(bob.token, 'bob.txt', 'Bob only').expect(201);
      const missing = '00000000-0000-4000-8000-000000000000';
      for (const [method, suffix] of [['get', ''], ['get', '/content'], ['delete', '']] as const) {
        const other = await t.http()[method](`/api/v1/files/${body.file_id}${suffix}`).set('Authorization', `Bearer ${alice.token}`).expect(404);
        const none = await t.http()[method](`/api/v1/files/${missing}${suffix}`).set('Authorization', `Bearer ${alice.token}`).expect(404);
        expect(other.body.error.code).toBe('FILE_NOT_FOUND');
        expect({ ...other.body.error, timestamp: 0, request_id: 0 }).toEqual({ ...none.body.error, timestamp: 0, request_id: 0 });
      }
      const list = await t.http().get('/api/v1/files').set('Authorization', `Bearer ${alice.token}`).expect(200);
      expect(list.body.files).toEqual([]);
      await t.http().get(`/api/v1/files/${body.file_id}`).set('Authorization', `Bearer ${bob.token}`).expect(200);
    });

    it('lists the session\'s files or one conversation\'s, newest first', async () => {
      const s = await t.newSession();
      const conv = await t.app.get(ConversationsService).create(s.id, 'Files');
      const a = await upload(s.token, 'a.txt', 'alpha').expect(201);
      const b = await upload(s.token, 'b.txt', 'beta', { conversation_id: conv.id }).expect(201);
      const all = await t.http().get('/api/v1/files').set('Authorization', `Bearer ${s.token}`).expect(200);
      expect(all.body.files.map((f: { file_id: string }) => f.file_id).sort()).toEqual([a.body.file_id, b.body.file_id].sort());
      expect(all.body.files[0]).not.toHaveProperty('extracted_text');
      const one = await t.http().get(`/api/v1/files?conversation_id=${conv.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
      expect(one.body.files).toEqual([expect.objectContaining({ file_id: b.body.file_id, conversation_id: conv.id, filename: 'b.txt' })]);
      const other = await t.newSession();
      await t.http().get(`/api/v1/files?conversation_id=${conv.id}`).set('Authorization', `Bearer ${other.token}`).expect(404);
    });

    it('pages the list with limit and offset and says how many there are (a session\'s 1,001st file was left out, unsaid)', async () => {
      const s = await t.newSession();
      const ids: string[] = [];
      for (const name of ['1.txt', '2.txt', '3.txt']) ids.unshift((await upload(s.token, name, `text of ${name}`).expect(201)).body.file_id as string);
      const page = async (query: string) => (await t.http().get(`/api/v1/files${query}`).set('Authorization', `Bearer ${s.token}`).expect(200)).body as
        { files: Array<{ file_id: string }>; total: number; limit: number; offset: number };
      const all = await page('');
      expect({ ...all, files: all.files.map((f) => f.file_id) }).toEqual({ files: ids, total: 3, limit: 1000, offset: 0 });
      const second = await page('?limit=2&offset=2');
      expect({ ...second, files: second.files.map((f) => f.file_id) }).toEqual({ files: [ids[2]], total: 3, limit: 2, offset: 2 });
      for (const bad of ['limit=0', 'limit=1001', 'offset=-1', 'limit=x']) {
        const res = await t.http().get(`/api/v1/files?${bad}`).set('Authorization', `Bearer ${s.token}`).expect(400);
        expect(res.body.error.code).toBe('VALIDATION_ERROR');
      }
    });

    it('stores identical content once and deletes the bytes with the last row that refers to them', async () => {
      const s = await t.newSession();
      const first = await upload(s.token, 'one.txt', 'same bytes').expect(201);
      const second = await upload(s.token, 'two.txt', 'same bytes').expect(201);
      const key = (await rows.findOneByOrFail({ id: first.body.file_id })).storageKey;
      expect((await rows.findOneByOrFail({ id: second.body.file_id })).storageKey).toBe(key);
      expect(stored().filter((k) => k === key)).toHaveLength(1);
      await t.http().delete(`/api/v1/files/${first.body.file_id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
      expect(stored()).toContain(key);
      const dl = await download(s.token, second.body.file_id).expect(200);
      expect((dl.body as Buffer).toString()).toBe('same bytes');
      await t.http().delete(`/api/v1/files/${second.body.file_id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
      expect(stored()).not.toContain(key);
      await t.http().get(`/api/v1/files/${second.body.file_id}`).set('Authorization', `Bearer ${s.token}`).expect(404);
    });

    it('deleting a conversation deletes its files with their bytes at once (not at the next sweep)', async () => {
      const s = await t.newSession();
      const conv = await t.app.get(ConversationsService).create(s.id, 'With a file');
      const res = await upload(s.token, 'private.txt', 'delete me with the chat', { conversation_id: conv.id }).expect(201);
      const key = (await rows.findOneByOrFail({ id: res.body.file_id })).storageKey;
      expect(stored()).toContain(key);
      await t.http().delete(`/api/v1/conversations/${conv.id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
      await t.http().get(`/api/v1/files/${res.body.file_id}`).set('Authorization', `Bearer ${s.token}`).expect(404);
      expect(stored()).not.toContain(key);
    });

    it('deletes a conversation even when its files\' bytes cannot be deleted then (their lock unavailable): the sweep takes them later', async () => {
      const s = await t.newSession();
      const conv = await t.app.get(ConversationsService).create(s.id, 'With a file, lock away');
      const res = await upload(s.token, 'locked.txt', 'the lock is away', { conversation_id: conv.id }).expect(201);
      const key = (await rows.findOneByOrFail({ id: res.body.file_id })).storageKey;
      const lock = vi.spyOn(DistributedLock.prototype, 'run').mockRejectedValue(new Error('Redis is away'));
      try {
        await t.http().delete(`/api/v1/conversations/${conv.id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
      } finally {
        lock.mockRestore();
      }
      await t.http().get(`/api/v1/conversations/${conv.id}`).set('Authorization', `Bearer ${s.token}`).expect(404);
      expect(await rows.existsBy({ id: res.body.file_id })).toBe(false);
      expect(stored()).toContain(key);
      expect(await t.app.get(FilesService).sweepOrphans(-1)).toBeGreaterThanOrEqual(1);
      expect(stored()).not.toContain(key);
    });

    it('sweeps bytes that no row refers to any more (e.g. after a session purge)', async () => {
      const s = await t.newSession();
      const res = await upload(s.token, 'purged.txt', 'soon gone').expect(201);
      const key = (await rows.findOneByOrFail({ id: res.body.file_id })).storageKey;
      await rows.delete({ sessionId: s.id }); // what the session purge's cascade does
      const files = t.app.get(FilesService);
      expect(await files.sweepOrphans(60_000)).toBe(0); // too young: left alone
      expect(stored()).toContain(key);
      expect(await files.sweepOrphans(-1)).toBeGreaterThanOrEqual(1);
      expect(stored()).not.toContain(key);
    });

    it('deletes uploads never sent once UNSENT_FILE_TTL_HOURS have passed, with their bytes; sent and younger ones stay', async () => {
      const s = await t.newSession();
      const files = t.app.get(FilesService);
      const conversations = t.app.get(ConversationsService);
      const old = (await upload(s.token, 'old.txt', 'uploaded, never sent').expect(201)).body.file_id as string;
      const young = (await upload(s.token, 'young.txt', 'uploaded just now').expect(201)).body.file_id as string;
      const sent = (await upload(s.token, 'sent.txt', 'sent long ago').expect(201)).body.file_id as string;
      // The same bytes as a file that stays: they are kept for it.
      const shared = (await upload(s.token, 'copy.txt', 'uploaded just now').expect(201)).body.file_id as string;
      const conv = await conversations.create(s.id);
      const [question] = await conversations.appendMessages(conv.id, [{ role: 'user', content: 'read it', status: 'complete' }]);
      await files.attach(s.id, [sent], conv.id, question.id);
      const dayAgo = new Date(Date.now() - 25 * 3600_000);
      await rows.update({ id: In([old, sent, shared]) }, { createdAt: dayAgo });
      const oldKey = (await rows.findOneByOrFail({ id: old })).storageKey;
      const sharedKey = (await rows.findOneByOrFail({ id: shared })).storageKey;
      expect(t.app.get<AppConfig>(APP_CONFIG).limits.unsentFileTtlMs).toBe(24 * 3600_000);

      await t.app.get(FileSweepJob).run();
      expect(await rows.existsBy({ id: old })).toBe(false);
      expect(await rows.existsBy({ id: shared })).toBe(false);
      expect(stored()).not.toContain(oldKey);
      expect(stored()).toContain(sharedKey);
      await t.http().get(`/api/v1/files/${old}`).set('Authorization', `Bearer ${s.token}`).expect(404);
      for (const kept of [young, sent]) await t.http().get(`/api/v1/files/${kept}`).set('Authorization', `Bearer ${s.token}`).expect(200);
      // Sent later: kept however old it grows.
      await rows.update({ id: young }, { createdAt: dayAgo });
      const [later] = await conversations.appendMessages(conv.id, [{ role: 'user', content: 'and this', status: 'complete' }]);
      await files.attach(s.id, [young], conv.id, later.id);
      await files.deleteUnsent(new Date(Date.now() - 24 * 3600_000));
      expect(await rows.existsBy({ id: young })).toBe(true);
    });

    it('keeps serving other requests while a large PDF is extracted', async () => {
      const s = await t.newSession();
      const pdf = await makePdf(100, 40);
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      const started = performance.now();
      const uploading = upload(s.token, 'big.pdf', pdf).then((res) => ({ res, ms: performance.now() - started }));
      let served = 0;
      let done = false;
      void uploading.finally(() => { done = true; });
      while (!done) {
        await t.http().get('/api/v1/health/live').expect(200);
        served++;
      }
      const { res, ms } = await uploading;
      delay.disable();
      expect(res.status).toBe(201);
      expect(res.body.pages).toBe(100);
      const max = delay.max / 1e6;
      console.info(`upload of a 100-page PDF: ${ms.toFixed(0)} ms; ${served} other requests served meanwhile; event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${max.toFixed(1)} ms`);
      expect(served).toBeGreaterThan(3);
      // The loop is never blocked for anything like the extraction's duration.
      expect(max).toBeLessThan(Math.max(150, ms / 4));
    });
  });

  describe('the chat seam', () => {
    it('validates ownership without writing, then attaches files to a message', async () => {
      const alice = await t.newSession();
      const bob = await t.newSession();
      const files = t.app.get(FilesService);
      const conversations = t.app.get(ConversationsService);
      const mine = await upload(alice.token, 'ctx.md', '# Context').expect(201);
      const bobs = await upload(bob.token, 'bob.md', '# Bob').expect(201);
      await expect(files.validate(alice.id, [mine.body.file_id, bobs.body.file_id])).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
      await expect(files.validate(alice.id, ['00000000-0000-4000-8000-000000000000'])).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
      await expect(files.validate(alice.id, [mine.body.file_id, mine.body.file_id])).resolves.toEqual([{ filename: 'ctx.md', extractedText: '# Context', tokenCount: expect.any(Number) }]);

      const conv = await conversations.create(alice.id);
      const [first] = await conversations.appendMessages(conv.id, [{ role: 'user', content: 'read this', status: 'complete' }]);
      const attached = await files.attach(alice.id, [mine.body.file_id], conv.id, first.id);
      expect(attached).toEqual([{ id: mine.body.file_id, filename: 'ctx.md', fileType: '.md', extractedText: '# Context', tokenCount: expect.any(Number) }]);
      expect(await rows.findOneByOrFail({ id: mine.body.file_id })).toMatchObject({ messageId: first.id, conversationId: conv.id });

      // The same file sent again with a later message: the first message keeps it too.
      const [second] = await conversations.appendMessages(conv.id, [{ role: 'user', content: 'again', status: 'complete' }]);
      const again = await files.attach(alice.id, [mine.body.file_id], conv.id, second.id);
      expect(again[0].id).not.toBe(mine.body.file_id);
      expect((await conversations.attachments([first.id, second.id])).map((a) => a.messageId).sort()).toEqual([first.id, second.id].sort());
    });

    it('refuses in validate, before anything is written, to send again a file whose copy would pass the quota', async () => {
      const s = await t.newSession();
      const files = t.app.get(FilesService);
      const conversations = t.app.get(ConversationsService);
      const doc = await upload(s.token, 'doc.txt', Buffer.alloc(MAX_UPLOAD, 'd')).expect(201);
      const pad = await upload(s.token, 'pad.txt', Buffer.alloc(MAX_UPLOAD / 4, 'p')).expect(201);
      const conv = await conversations.create(s.id);
      const [first] = await conversations.appendMessages(conv.id, [{ role: 'user', content: 'read this', status: 'complete' }]);
      // Attached once: its row is claimed, nothing copied.
      await files.validate(s.id, [doc.body.file_id]);
      await files.attach(s.id, [doc.body.file_id], conv.id, first.id);
      const used = 2.5 * MAX_UPLOAD;

      // Sent again, its text would be copied (1 MB more than the 0.5 MB left).
      const rowsBefore = await rows.find({ where: { sessionId: s.id }, order: { id: 'ASC' } });
      await expect(files.validate(s.id, [doc.body.file_id])).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED', details: { quota_bytes: QUOTA, used_bytes: used },
      });
      // A not yet attached file costs nothing more.
      await expect(files.validate(s.id, [pad.body.file_id])).resolves.toMatchObject([{ filename: 'pad.txt' }]);
      // Attaching anyway (a send that passed validate meanwhile) is refused too, copying nothing.
      const [second] = await conversations.appendMessages(conv.id, [{ role: 'user', content: 'again', status: 'complete' }]);
      await expect(files.attach(s.id, [doc.body.file_id], conv.id, second.id)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
      expect(await rows.find({ where: { sessionId: s.id }, order: { id: 'ASC' } })).toEqual(rowsBefore);
      expect(await files.usage(s.id)).toBe(used);

      // With room again, it is sent again as a copy.
      await t.http().delete(`/api/v1/files/${pad.body.file_id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
      await files.validate(s.id, [doc.body.file_id]);
      const [copy] = await files.attach(s.id, [doc.body.file_id], conv.id, second.id);
      expect(copy.id).not.toBe(doc.body.file_id);
      expect(await files.usage(s.id)).toBe(3 * MAX_UPLOAD);
    });
  });
});

// The scanner hook does not depend on the database: one dialect is enough.
describe('the optional virus scanner hook', () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-scanner-'));
    const script = join(dir, 'scan.sh');
    // Refuses files containing the EICAR test marker, as clamdscan would; the file's path comes last.
    writeFileSync(script, '#!/bin/sh\nfor f in "$@"; do :; done\ntest "$1" = --quiet -a -f "$f" || exit 2\n'
      + 'grep -q EICAR-STANDARD-ANTIVIRUS-TEST-FILE "$f" && exit 1\nexit 0\n', { mode: 0o755 });
    t = await createTestApp('sqlite', { FILE_SCANNER: 'command', FILE_SCANNER_COMMAND: `${script} --quiet` });
  });
  afterAll(async () => { await t.close(); rmSync(dir, { recursive: true, force: true }); });

  function upload(token: string, filename: string, content: string) {
    const { body, contentType } = multipart([{ name: 'file', filename, value: Buffer.from(content) }]);
    return t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${token}`).set('Content-Type', contentType).send(body);
  }

  it('keeps a clean file and refuses a flagged one with 422, removing it', async () => {
    const s = await t.newSession();
    await upload(s.token, 'clean.txt', 'nothing to see').expect(201);
    const res = await upload(s.token, 'eicar.txt', 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*').expect(422);
    expect(res.body.error).toMatchObject({ code: 'FILE_PROCESSING_ERROR', message: 'The file was refused by the virus scanner' });
    expect(readdirSync(join(t.config.dataDir, 'uploads'))).toHaveLength(1);
    expect(readdirSync(join(t.config.dataDir, 'tmp'))).toEqual([]);
  });
});

// The disk guard does not depend on the database: one dialect is enough.
describe('the free-disk guard (STORAGE_MIN_FREE_BYTES)', () => {
  let t: TestApp;
  // More than any disk here has: every upload finds the disk "nearly full".
  beforeAll(async () => { t = await createTestApp('sqlite', { STORAGE_MIN_FREE_BYTES: String(2 ** 52) }); });
  afterAll(async () => { await t.close(); });

  it('refuses uploads with 503 before receiving them while the disk is nearly full, storing nothing; the rest keeps working', async () => {
    const s = await t.newSession();
    const { body, contentType } = multipart([{ name: 'file', filename: 'notes.txt', value: Buffer.alloc(64 * 1024, 'n') }]);
    const res = await t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${s.token}`).set('Content-Type', contentType).send(body).expect(503);
    expect(res.body.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: 'Uploads are paused: the server is low on storage. Try again later.', details: { reason: 'storage_full' } });
    expect(readdirSync(join(t.config.dataDir, 'uploads'))).toEqual([]);
    const tmp = join(t.config.dataDir, 'tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
    expect(await t.app.get(FilesService).usage(s.id)).toBe(0);
    const chat = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).send({ message: 'still here?' }).expect(200);
    expect(chat.text).toContain('"type":"done"');
  });
});

describe('the upload line counts a client as the rate limits do', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp('sqlite', { TRUST_PROXY: 'loopback', RATE_LIMIT_SESSIONS_PER_MINUTE: '1000' }); });
  afterAll(async () => { await t.close(); });

  it('one IPv6 /64 is one client (each address of it had its own places in the line, and filled it for everyone), an IPv4-mapped address its IPv4', async () => {
    const clients: string[] = [];
    const extractor = t.app.get(TextExtractor);
    const extract = extractor.extract.bind(extractor);
    const spy = vi.spyOn(extractor, 'extract').mockImplementation((source, fileType, request) => {
      clients.push(request?.client ?? '');
      return extract(source, fileType, request);
    });
    try {
      for (const from of ['2001:db8:1:2::5', '2001:db8:1:2:ffff::9', '2001:db8:1:3::5', '::ffff:203.0.113.7', '203.0.113.7']) {
        const s = await t.newSession();
        await t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${s.token}`).set('X-Forwarded-For', from)
          .attach('file', Buffer.from(`from ${from}`), 'notes.txt').expect(201);
      }
    } finally {
      spy.mockRestore();
    }
    expect(clients).toHaveLength(5);
    expect(clients[0]).toBe(clients[1]);
    expect(clients[2]).not.toBe(clients[0]);
    expect(clients[3]).toBe(clients[4]);
  });
});
