import { Injectable } from '@nestjs/common';

export type ExtractionOutcome = 'ok' | 'refused';

/**
 * The files module's measurements. A seam for the metrics exporter: override this provider
 * (or subclass it) to feed prom-client, e.g. a histogram labelled by type and outcome.
 * By default it records nothing.
 */
@Injectable()
export class FileMetrics {
  /** How long extracting one file's text took, by file type (".pdf") and outcome. */
  observeExtraction(_ms: number, _fileType: string, _outcome: ExtractionOutcome): void {
    // Intentionally empty: the metrics exporter overrides this provider.
  }
}
