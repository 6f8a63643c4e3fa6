import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request } from 'express';
import type { StorageEngine } from 'multer';

/** A file as multer hands it to the route: on disk in the temp folder, hashed while it arrived. */
export interface ReceivedUpload extends Express.Multer.File {
  sha256: string;
}

/**
 * A multer storage engine that streams the upload to DATA_DIR/tmp while hashing and counting it.
 *
 * Why disk rather than multer's memory storage: the size limit is configurable, and memory
 * storage would hold every concurrent upload whole in the heap while it arrives. Here only
 * the bytes in flight are in memory; multer stops at limits.fileSize + 1 byte. Every failure
 * (limit, malformed part, client gone mid-upload) removes the partial file: this engine on a
 * stream error, multer via _removeFile on an abort, the upload interceptor after the route.
 */
export class TempUploadStorage implements StorageEngine {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  _handleFile(_req: Request, file: Express.Multer.File, callback: (error?: unknown, info?: Partial<ReceivedUpload>) => void): void {
    const path = join(this.dir, `${randomUUID()}.part`);
    const hash = createHash('sha256');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, next) {
        hash.update(chunk);
        size += chunk.length;
        next(null, chunk);
      },
    });
    pipeline(file.stream, measure, createWriteStream(path, { flags: 'wx', mode: 0o600 })).then(
      () => callback(null, { path, size, sha256: hash.digest('hex') }),
      (err: unknown) => {
        void rm(path, { force: true }).finally(() => callback(err));
      },
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File, callback: (error: Error | null) => void): void {
    if (!file.path) {
      callback(null);
      return;
    }
    rm(file.path, { force: true }).then(() => callback(null), (err: Error) => callback(err));
  }
}
