import { execFile } from 'node:child_process';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';

const SCAN_TIMEOUT_MS = 120_000;

/**
 * The optional virus scan of document 11.1, off by default.
 *
 * FILE_SCANNER=none (default): uploads are not scanned.
 * FILE_SCANNER=command with FILE_SCANNER_COMMAND="clamdscan --no-summary --fdpass" (for example):
 * every upload, before its text is extracted or it is stored, runs as
 * `<command words…> <absolute path of the received file>` (split on spaces, no shell). Exit
 * status 0 accepts the file; any other status, a timeout (2 min) or a command that cannot start
 * refuses it with 422 FILE_PROCESSING_ERROR and the file is removed (fail closed).
 */
@Injectable()
export class FileScanner {
  private readonly logger = new Logger(FileScanner.name);
  private readonly argv: string[] | null;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    switch (config.files.scanner) {
      case 'none':
        this.argv = null;
        break;
      case 'command': {
        const argv = (config.files.scannerCommand ?? '').trim().split(/\s+/).filter((w) => w.length > 0);
        if (argv.length === 0) throw new Error('Invalid env: FILE_SCANNER=command needs FILE_SCANNER_COMMAND');
        this.argv = argv;
        break;
      }
    }
  }

  get isEnabled(): boolean {
    return this.argv !== null;
  }

  /** Resolves when the file may be kept; throws AppException(FILE_PROCESSING_ERROR) when refused. */
  async scan(path: string): Promise<void> {
    if (!this.argv) return;
    const [command, ...args] = this.argv as [string, ...string[]];
    const verdict = await new Promise<{ ok: boolean; detail: string }>((resolve) => {
      execFile(command, [...args, path], { timeout: SCAN_TIMEOUT_MS, maxBuffer: 1024 * 1024, windowsHide: true }, (err, stdout) => {
        if (!err) resolve({ ok: true, detail: '' });
        else resolve({ ok: false, detail: `${err.code ?? err.signal ?? 'error'}: ${stdout.slice(0, 500)}` });
      });
    });
    if (!verdict.ok) {
      this.logger.warn({ detail: verdict.detail }, 'upload refused by the file scanner');
      throw new AppException(ErrorCode.FileProcessingError, 'The file was refused by the virus scanner');
    }
  }
}
