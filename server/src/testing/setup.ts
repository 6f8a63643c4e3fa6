import 'reflect-metadata';
import { upstreamWorker } from '../chat/providers/threaded-chat.provider.js';
import { extractionHost } from '../files/text-extractor.js';
import { TEST_EXTRACTION_HOST, TEST_UPSTREAM_WORKER } from './worker-build.js';

// Worker threads run compiled code: the global setup compiled it from the source under test.
upstreamWorker.file = TEST_UPSTREAM_WORKER;
extractionHost.file = TEST_EXTRACTION_HOST;
