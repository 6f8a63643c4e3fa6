import { FakeOpenAi } from './fake-openai';
import { FAKE_OPENAI_PORT } from './ports';

/** Starts the loopback upstream in the runner process; the returned function stops it after the run. */
export default async function globalSetup(): Promise<() => Promise<void>> {
  const fake = new FakeOpenAi();
  await fake.start(FAKE_OPENAI_PORT);
  return () => fake.stop();
}
