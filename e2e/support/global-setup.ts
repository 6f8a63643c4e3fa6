import { rmSync } from 'node:fs';
import { basename } from 'node:path';
import { FakeOpenAi } from './fake-openai';
import { FAKE_OPENAI_PORT } from './ports';

/** Starts the loopback upstream in the runner process; the returned function stops it and cleans up after the run. */
export default async function globalSetup(): Promise<() => Promise<void>> {
  const fake = new FakeOpenAi();
  await fake.start(FAKE_OPENAI_PORT);
  return async () => {
    await fake.stop();
    // The run's fresh data directories (see playwright.config.ts); only ever our own temp dir.
    const dataRoot = process.env['E2E_DATA_ROOT'];
    if (dataRoot && basename(dataRoot).startsWith('parley-e2e-')) rmSync(dataRoot, { recursive: true, force: true });
  };
}
