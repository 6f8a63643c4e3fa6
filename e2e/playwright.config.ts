import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defineConfig, devices } from '@playwright/test';
import {
  APP_PORT, APP_URL, E2E_ACCESS_TOKEN, FAKE_OPENAI_PORT, GATED_APP_PORT, GATED_APP_URL, IDENTITY_APP_PORT, IDENTITY_APP_URL,
  IDENTITY_HEADER, OFFLINE_APP_PORT, OFFLINE_APP_URL,
} from './support/ports';

// The config is evaluated again in each worker; the env var keeps one fresh data directory per run.
process.env['E2E_DATA_ROOT'] ??= mkdtempSync(join(tmpdir(), 'parley-e2e-'));
const dataRoot = process.env['E2E_DATA_ROOT'];
const repoRoot = resolve(__dirname, '..');

const serverEnv = {
  NODE_ENV: 'development',
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
  SWAGGER_ENABLED: 'false',
  RATE_LIMIT_CHAT_PER_MINUTE: '1000',
  RATE_LIMIT_CHAT_PER_HOUR: '10000',
  RATE_LIMIT_REQUESTS_PER_MINUTE: '20000',
  RATE_LIMIT_SESSIONS_PER_MINUTE: '1000',
  UPSTREAM_MAX_RETRIES: '0',
  STREAM_FLUSH_INTERVAL_MS: '100',
};

/** One built server (`node dist/server/main.js`) with its own port and data directory. */
function server(url: string, port: number, name: string, env: Record<string, string>) {
  return {
    command: 'node dist/server/main.js',
    cwd: repoRoot,
    url: `${url}/api/v1/health/live`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore' as const,
    stderr: 'pipe' as const,
    env: { ...serverEnv, ...env, PORT: String(port), DATA_DIR: join(dataRoot, name) },
  };
}

export default defineConfig({
  testDir: '.',
  testMatch: '**/*.spec.ts',
  outputDir: join(__dirname, 'artifacts', 'test-results'),
  fullyParallel: false,
  workers: 2,
  retries: 0,
  timeout: 45_000,
  expect: { timeout: 10_000 },
  // CI (.ci/run) collects counts from PARLEY_TEST_REPORT_DIR.
  reporter: [['list'], ['json', { outputFile: process.env.PARLEY_TEST_REPORT_DIR ? join(process.env.PARLEY_TEST_REPORT_DIR, 'e2e.json') : join(__dirname, 'artifacts', 'results.json') }]],
  globalSetup: './support/global-setup.ts',
  use: {
    baseURL: APP_URL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    },
  },
  projects: [{ name: 'chromium', use: { ...devices['Desktop Chrome'], channel: undefined } }],
  // Builds nothing: `npm run build` comes first (see the README).
  webServer: [
    server(APP_URL, APP_PORT, 'openai', {
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: `http://127.0.0.1:${FAKE_OPENAI_PORT}/v1`,
      OPENAI_API_KEY: 'sk-e2e-fake',
      OPENAI_MODEL: 'fake-gpt-e2e',
      MAX_UPLOAD_BYTES: String(64 * 1024),
    }),
    server(OFFLINE_APP_URL, OFFLINE_APP_PORT, 'offline', { LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '5' }),
    server(GATED_APP_URL, GATED_APP_PORT, 'gated', { LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '5', ACCESS_TOKEN: E2E_ACCESS_TOKEN }),
    server(IDENTITY_APP_URL, IDENTITY_APP_PORT, 'identity', { LLM_PROVIDER: 'offline', OFFLINE_TOKEN_DELAY_MS: '5', TRUSTED_IDENTITY_HEADER: IDENTITY_HEADER }),
  ],
});
