// The extraction host: a thread of the server that owns the extraction's child processes (ChildPool).
// Started by TextExtractor; never imported by the main thread. Starting a child blocks the thread that
// starts it until the child has exec'd, and each job's watchdog reads /proc every 20 ms: here, that
// costs the streams' event loop nothing.
import { parentPort, workerData } from 'node:worker_threads';
import { ChildPool, type ExtractionHostData, type FromExtractionHost, type ToExtractionHost } from './extraction-children.js';

const port = parentPort;
if (!port) throw new Error('extraction-host.worker runs as a worker thread only');

const { limits, childEntry } = workerData as ExtractionHostData;
const pool = new ChildPool(limits, childEntry);
let isClosing = false;

/** After `close`, the thread ends once the files being read have answered. */
function endIfDone(): void {
  if (isClosing && pool.idle) port?.close();
}

port.on('message', (msg: ToExtractionHost) => {
  switch (msg.op) {
    case 'job':
      void pool.run(msg.id, msg.bytes, msg.fileType).then((outcome) => {
        port.postMessage({ id: msg.id, outcome } satisfies FromExtractionHost);
        endIfDone();
      });
      break;
    case 'cancel':
      pool.cancel(msg.id);
      break;
    case 'keep-spare':
      pool.keepSpare();
      break;
    case 'close':
      // The files being read still answer; then the thread ends.
      isClosing = true;
      pool.close();
      endIfDone();
      break;
  }
});
