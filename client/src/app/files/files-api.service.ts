import { Injectable, inject } from '@angular/core';
import { Observable } from 'rxjs';
import { API_BASE, ApiClient } from '../core/api-client';
import { ApiError, apiErrorFrom } from '../core/api-error';
import type { UploadedFile } from '../core/api-models';

export type UploadEvent =
  | { type: 'progress'; loaded: number; total: number }
  | { type: 'done'; file: UploadedFile };

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Uploads with XMLHttpRequest, since fetch reports no upload progress. Unsubscribing aborts. */
@Injectable({ providedIn: 'root' })
export class FilesApi {
  private readonly api = inject(ApiClient);

  upload(file: File, conversationId?: string): Observable<UploadEvent> {
    return new Observable<UploadEvent>((subscriber) => {
      let xhr: XMLHttpRequest | null = null;
      let isRetry = false;
      const start = (): void => {
        const request = new XMLHttpRequest();
        xhr = request;
        const form = new FormData();
        form.append('file', file, file.name);
        if (conversationId) form.append('conversation_id', conversationId);
        request.open('POST', `${API_BASE}/files/upload`);
        request.withCredentials = true;
        request.setRequestHeader('Accept', 'application/json');
        request.upload.onprogress = (e) => {
          subscriber.next({ type: 'progress', loaded: e.loaded, total: e.lengthComputable ? e.total : file.size });
        };
        request.onerror = () => subscriber.error(ApiError.network());
        request.onload = () => {
          const body = parseJson(request.responseText);
          if (request.status === 401 && !isRetry) {
            isRetry = true;
            this.api.ensureSession().then(start, (e: unknown) => subscriber.error(e));
            return;
          }
          if (request.status >= 200 && request.status < 300) {
            subscriber.next({ type: 'done', file: body as UploadedFile });
            subscriber.complete();
          } else {
            subscriber.error(apiErrorFrom(request.status, body, request.getResponseHeader('Retry-After')));
          }
        };
        request.send(form);
      };
      start();
      return () => {
        if (xhr && xhr.readyState !== XMLHttpRequest.DONE) xhr.abort();
      };
    });
  }

  async extractedText(fileId: string): Promise<string> {
    return (await this.details(fileId)).extracted_text;
  }

  /** A file's details as the upload answered them (its text's beginning included). */
  details(fileId: string): Promise<UploadedFile> {
    return this.api.get<UploadedFile>(`${API_BASE}/files/${encodeURIComponent(fileId)}`);
  }

  remove(fileId: string): Promise<void> {
    return this.api.delete(`${API_BASE}/files/${encodeURIComponent(fileId)}`);
  }
}
