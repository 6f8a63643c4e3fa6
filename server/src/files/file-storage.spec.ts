import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStorageKey, LocalDiskStorage, StoredObjectMissing, storageKeyFor } from './file-storage.js';

const SESSION = '6f1c2a9e-8a3b-4c51-9d3c-5d2e2b8e7a10';
const SHA = 'a'.repeat(64);

describe('LocalDiskStorage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-storage-'));
  const root = join(dir, 'uploads');
  const storage = new LocalDiskStorage(root);
  beforeAll(() => storage.init());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('removes the partial copies a crash left (older than the cutoff), and nothing else', async () => {
    const key = storageKeyFor(SESSION, 'b'.repeat(64), '.pdf');
    const stale = join(root, `${key}.4242.staging`);
    const fresh = join(root, `${key}.4343.staging`);
    const other = join(root, 'notes.4242.staging');
    for (const path of [stale, fresh, other]) writeFileSync(path, 'part');
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, old, old);
    utimesSync(other, old, old);
    expect(await storage.sweepPartial(Date.now() - 3_600_000)).toBe(1);
    expect(readdirSync(root).sort()).toEqual([`${key}.4343.staging`, 'notes.4242.staging'].sort());
    for (const path of [fresh, other]) rmSync(path);
  });

  it('moves a local file in under its key, streams it back and deletes it', async () => {
    const local = join(dir, 'incoming.part');
    writeFileSync(local, 'hello');
    const key = storageKeyFor(SESSION, SHA, '.txt');
    await storage.put(key, local);
    expect(readdirSync(dir)).not.toContain('incoming.part');
    const { stream, size } = await storage.open(key);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect({ size, text: Buffer.concat(chunks).toString() }).toEqual({ size: 5, text: 'hello' });
    const listed: string[] = [];
    for await (const o of storage.list()) listed.push(o.key);
    expect(listed).toEqual([key]);
    await storage.delete(key);
    await storage.delete(key); // absent is fine
    await expect(storage.open(key)).rejects.toBeInstanceOf(StoredObjectMissing);
  });

  it.each([
    '../outside.txt', `../${SESSION}_${SHA}.txt`, `${SESSION}_${SHA}.txt/../../x`, `${SESSION}_${SHA}`, `${SESSION}_${SHA}.TXT`,
    `${SESSION}_${SHA}.t/x`, '/etc/passwd', `${SESSION}_${SHA}.txt\u0000.js`, '', '.',
  ])('refuses the key %j on every operation', async (key) => {
    expect(isStorageKey(key)).toBe(false);
    await expect(storage.open(key)).rejects.toThrow(/Invalid storage key/);
    await expect(storage.delete(key)).rejects.toThrow(/Invalid storage key/);
    await expect(storage.put(key, join(dir, 'nothing'))).rejects.toThrow(/Invalid storage key/);
  });

  it('builds keys only from a session id, a hash and an extension', () => {
    expect(() => storageKeyFor('../..', SHA, '.txt')).toThrow();
    expect(() => storageKeyFor(SESSION, SHA, '/.txt')).toThrow();
  });

  it('lists only names that are storage keys', async () => {
    writeFileSync(join(root, 'stray-file'), 'x');
    const listed: string[] = [];
    for await (const o of storage.list()) listed.push(o.key);
    expect(listed).toEqual([]);
  });

  it('tells the free space of the disk the objects are on', async () => {
    const free = await storage.freeBytes();
    expect(Number.isSafeInteger(free) && free > 0).toBe(true);
  });
});
