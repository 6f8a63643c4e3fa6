import { copyFile, mkdir, open, opendir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';

/** `{session_id}_{sha256}{ext}`: the only names a stored object can have. */
const STORAGE_KEY = /^[0-9a-f-]{36}_[0-9a-f]{64}\.[a-z0-9]+$/;

export function isStorageKey(key: string): boolean {
  return STORAGE_KEY.test(key);
}

export function storageKeyFor(sessionId: string, sha256: string, ext: string): string {
  const key = `${sessionId}_${sha256}${ext}`;
  if (!isStorageKey(key)) throw new Error('Invalid storage key');
  return key;
}

export interface StoredObject {
  key: string;
  modifiedAt: Date;
}

/** Thrown when a key names nothing stored. */
export class StoredObjectMissing extends Error {
  constructor(key: string) {
    super(`No stored object ${key}`);
    this.name = 'StoredObjectMissing';
  }
}

/**
 * Where upload bytes live, addressed by storage key only. One small class per outside system:
 * the local disk now, an S3-compatible bucket later. Writing the same key twice stores the same
 * bytes (keys include the content hash), so put() may simply overwrite.
 */
export abstract class FileStorage {
  /** Stores the bytes of a local file under key; the local file is consumed (moved or removed). */
  abstract put(key: string, localPath: string): Promise<void>;
  /** A stream of the bytes and their size; StoredObjectMissing when absent. */
  abstract open(key: string): Promise<{ stream: Readable; size: number }>;
  /** Removes the object; absent objects are fine. */
  abstract delete(key: string): Promise<void>;
  /** Every stored object, for the orphan sweep. */
  abstract list(): AsyncIterable<StoredObject>;
  /** Bytes that can still be written where the objects live; undefined where that has no meaning. */
  abstract freeBytes(): Promise<number | undefined>;
  /** Removes partial copies a process left when it died mid-put, older than `cutoff` (ms since the epoch); how many. */
  abstract sweepPartial(cutoff: number): Promise<number>;
}

/** A copy under way into the uploads folder (LocalDiskStorage.put across volumes): `<key>.<pid>.staging`. */
const STAGING = /^(.+)\.\d+\.staging$/;

/**
 * Objects as files in one folder (DATA_DIR/uploads). Every key is checked against the key
 * pattern and its resolved path against the folder, so no id or name can reach outside it.
 */
export class LocalDiskStorage extends FileStorage {
  private readonly root: string;

  constructor(root: string) {
    super();
    this.root = resolve(root);
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  async put(key: string, localPath: string): Promise<void> {
    const target = this.pathOf(key);
    try {
      // Atomic on one filesystem: readers never see a half-written object.
      await rename(localPath, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      // The uploads folder is on another volume than the temp folder: copy, then swap in.
      const staging = `${target}.${process.pid}.staging`;
      try {
        await copyFile(localPath, staging);
        await rename(staging, target);
      } catch (copyErr) {
        await rm(staging, { force: true });
        throw copyErr;
      }
      await rm(localPath, { force: true });
    }
  }

  async open(key: string): Promise<{ stream: Readable; size: number }> {
    const handle = await open(this.pathOf(key), 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new StoredObjectMissing(key);
      throw err;
    });
    try {
      const { size } = await handle.stat();
      return { stream: handle.createReadStream({ autoClose: true }), size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async *list(): AsyncIterable<StoredObject> {
    const dir = await opendir(this.root);
    for await (const entry of dir) {
      if (!entry.isFile() || !isStorageKey(entry.name)) continue;
      const info = await stat(join(this.root, entry.name)).catch(() => null);
      if (info) yield { key: entry.name, modifiedAt: info.mtime };
    }
  }

  async sweepPartial(cutoff: number): Promise<number> {
    let removed = 0;
    const dir = await opendir(this.root);
    for await (const entry of dir) {
      const key = STAGING.exec(entry.name)?.[1];
      if (!entry.isFile() || key === undefined || !isStorageKey(key)) continue;
      const path = join(this.root, entry.name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < cutoff) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async freeBytes(): Promise<number> {
    const fs = await statfs(this.root);
    return fs.bavail * fs.bsize;
  }

  private pathOf(key: string): string {
    if (!isStorageKey(key)) throw new Error('Invalid storage key');
    const path = resolve(this.root, key);
    if (!path.startsWith(this.root + sep)) throw new Error('Storage key escapes the uploads folder');
    return path;
  }
}
