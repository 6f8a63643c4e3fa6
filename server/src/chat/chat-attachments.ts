import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import type { FileText } from './token-budget.js';

/** A file attached to a user message, with the text that enters the model's context. */
export interface AttachedFile {
  id: string;
  filename: string;
  /** Lower-case extension with its dot, e.g. ".pdf". */
  fileType: string;
  extractedText: string;
  tokenCount: number;
}

/**
 * The seam between chat and files. The files module provides it under CHAT_ATTACHMENTS
 * (e.g. `{ provide: CHAT_ATTACHMENTS, useExisting: FilesService }`); ChatService looks it up
 * across modules, so no import is needed here.
 *
 * - `validate` runs before anything is written: it throws AppException(FILE_NOT_FOUND) (404)
 *   for any id the session does not own (another session's file is reported like a missing one);
 *   returns the files' names and text, in the order of `fileIds` (the prompt is built from them
 *   before the turn is stored).
 * - `attach` runs right after the user message is saved: links the files to that message and
 *   conversation and returns them, in the order of `fileIds`.
 */
export interface ChatAttachments {
  validate(sessionId: string, fileIds: string[]): Promise<FileText[]>;
  attach(sessionId: string, fileIds: string[], conversationId: string, messageId: string): Promise<AttachedFile[]>;
  /**
   * Whether message `messageId` holds these files, in this order (an Idempotency-Key's retry is the
   * same request only with the same files). By content: a file attached twice is a copy with an id of its own.
   */
  holdsFiles(sessionId: string, fileIds: string[], messageId: string): Promise<boolean>;
}

export const CHAT_ATTACHMENTS = Symbol('CHAT_ATTACHMENTS');

/** Until the files module provides the seam: no file can be attached. */
export class NoChatAttachments implements ChatAttachments {
  validate(_sessionId: string, fileIds: string[]): Promise<FileText[]> {
    return fileIds.length === 0 ? Promise.resolve([]) : Promise.reject(new AppException(ErrorCode.FileNotFound, 'File not found'));
  }

  attach(sessionId: string, fileIds: string[]): Promise<AttachedFile[]> {
    return this.validate(sessionId, fileIds).then(() => []);
  }

  holdsFiles(sessionId: string, fileIds: string[]): Promise<boolean> {
    return this.validate(sessionId, fileIds).then(() => true);
  }
}
