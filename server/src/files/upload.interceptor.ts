import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type CallHandler, type ExecutionContext, HttpException, HttpStatus, Inject, Injectable, type NestInterceptor } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import type { Request, Response } from 'express';
import type { Options } from 'multer';
import { catchError, defer, finalize, type Observable } from 'rxjs';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { withRepeatsNamed } from '../common/validation.pipe.js';
import { addressKey } from '../common/rate-limit.js';
import type { AppRequest } from '../common/request-context.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { FilesService, type UploadClient } from './files.service.js';
import { SessionUploads } from './session-uploads.js';
import { type ReceivedUpload, TempUploadStorage } from './temp-upload-storage.js';
import { formatSize } from './file-size.js';

/** The multipart part that carries the file. */
export const FILE_FIELD = 'file';

export type UploadRequest = AppRequest & {
  file?: ReceivedUpload;
  /** Who sent it, and a signal that aborts once the client is gone before its answer (FilesService.upload). */
  uploadClient?: UploadClient;
  /** Gives back the session's upload slot (SessionUploads) taken when the file part was accepted. */
  releaseUploadSlot?: () => void;
};

/** What multer may accept from one upload request: one file, a couple of short text fields. */
export function uploadLimits(maxUploadBytes: number): NonNullable<Options['limits']> {
  return { fileSize: maxUploadBytes, files: 1, fields: 4, fieldNameSize: 64, fieldSize: 256, parts: 6, headerPairs: 20 };
}

async function removeTemp(req: UploadRequest): Promise<void> {
  const path = req.file?.path;
  if (path) await rm(path, { force: true });
}

/**
 * A part named "file" with an empty filename is what a form sends when no file was chosen. busboy
 * reads it as a text field unless it is typed application/octet-stream (then multer drops it), so
 * the body held a field `file` and validation answered "property file should not exist". It is a
 * missing file: without it the service answers as for one. Runs before the pipes (interceptors do).
 */
function forgetEmptyFilePart(req: UploadRequest): void {
  const body = req.body as Record<string, unknown> | undefined;
  if (req.file === undefined && typeof body === 'object' && body !== null && Object.hasOwn(body, FILE_FIELD)) delete body[FILE_FIELD];
}

/**
 * Receives the multipart upload with multer (via Nest's FileInterceptor): the size limit is
 * enforced while the body streams in, the type and the quota are checked before any byte is
 * written, and multer's errors leave as our error envelope. Whatever the route does, the temp
 * file is removed once the request is over.
 */
@Injectable()
export class UploadInterceptor implements NestInterceptor {
  private readonly multer: NestInterceptor;
  private readonly maxUploadBytes: number;

  constructor(@Inject(APP_CONFIG) config: AppConfig, private readonly files: FilesService, private readonly uploads: SessionUploads) {
    this.maxUploadBytes = config.limits.maxUploadBytes;
    const Multer = FileInterceptor(FILE_FIELD, {
      storage: new TempUploadStorage(join(config.dataDir, 'tmp')),
      limits: uploadLimits(config.limits.maxUploadBytes),
      // Browsers send UTF-8 names; busboy would read them as Latin-1.
      defParamCharset: 'utf8',
      fileFilter: (req: Request, file: Express.Multer.File, accept: (error: Error | null, acceptFile: boolean) => void) => {
        const sessionId = (req as UploadRequest).auth?.sessionId;
        try {
          this.files.assertAllowedType(file.originalname);
        } catch (err) {
          accept(err as Error, false);
          return;
        }
        if (!sessionId) {
          accept(new AppException(ErrorCode.Unauthorized, 'Sign in first'), false);
          return;
        }
        const upload = req as UploadRequest;
        // One part per request (limits.files), but never two slots for one request.
        if (!upload.releaseUploadSlot) {
          try {
            // Before the quota, and before a byte is stored: a session with two files still being read gets 429.
            upload.releaseUploadSlot = this.uploads.take(sessionId);
          } catch (err) {
            accept(err as Error, false);
            return;
          }
        }
        this.files.assertQuotaLeft(sessionId).then(() => accept(null, true), (err: Error) => accept(err, false));
      },
    });
    this.multer = new Multer();
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const req = context.switchToHttp().getRequest<UploadRequest>();
    const res = context.switchToHttp().getResponse<Response>();
    const gone = new AbortController();
    // The connection closed before the answer was sent: the client is gone (a proxy's timeout, a closed tab).
    res.once('close', () => { if (!res.writableFinished) gone.abort(); });
    // Counted as the rate limits count an address: an IPv6 client by its /64 (it holds them all).
    req.uploadClient = { address: addressKey(req.ip), signal: gone.signal };
    let handled: Observable<unknown>;
    try {
      handled = await this.multer.intercept(context, next) as Observable<unknown>;
    } catch (err) {
      // Refused while receiving (too large, quota, malformed, client gone): multer removed the partial file.
      req.releaseUploadSlot?.();
      throw this.translate(err);
    }
    forgetEmptyFilePart(req);
    return handled.pipe(
      // On an error (e.g. the body failed validation) the temp file is gone before the answer leaves. A form field
      // given twice reached the DTO as a list: it is refused saying so.
      catchError((err: unknown) => defer(async () => {
        await removeTemp(req);
        throw withRepeatsNamed(err, req.body);
      })),
      // And if the client is gone before the route finished; the upload is no longer in flight either way.
      finalize(() => {
        req.releaseUploadSlot?.();
        void removeTemp(req);
      }),
    );
  }

  /** Multer's and busboy's errors, as the codes the API promises. */
  private translate(err: unknown): unknown {
    if (err instanceof AppException) return err;
    if (err instanceof HttpException) {
      if (err.getStatus() === Number(HttpStatus.PAYLOAD_TOO_LARGE)) {
        return new AppException(ErrorCode.FileTooLarge, `The file is larger than the ${formatSize(this.maxUploadBytes)} limit`,
          { max_bytes: this.maxUploadBytes });
      }
      const reason = err.message.replace(/^Multipart: /, '');
      return misplacedFile(reason) ?? new AppException(ErrorCode.ValidationError, `Malformed upload: ${reason}`);
    }
    // The client went away mid-upload: nobody will read this answer, and it is not our error.
    if (err instanceof Error && /^Request (aborted|closed)$/.test(err.message)) {
      return new AppException(ErrorCode.ValidationError, 'Upload aborted');
    }
    return err;
  }
}

/**
 * A file in the wrong part, or a second one, said as such and named like any refused field: multer's own words were
 * "Malformed upload: Too many files" and "Malformed upload: Unexpected file field - attachment", with no `details`.
 */
function misplacedFile(reason: string): AppException | undefined {
  const refuse = (field: string, message: string): AppException =>
    new AppException(ErrorCode.ValidationError, message, { fields: [{ field, errors: [message] }] });
  if (reason === 'Too many files') return refuse('file', 'Send one file per upload: the part named "file" came more than once');
  const other = /^Unexpected file field - (.+)$/.exec(reason)?.[1];
  return other === undefined ? undefined : refuse(other, `Unexpected file in the part named "${other}": send the file in a part named "file"`);
}
