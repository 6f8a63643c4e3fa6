import { createHmac } from 'node:crypto';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { DestinationStream } from 'pino';
import request from 'supertest';
import { createApp } from '../app.factory.js';
import { type AppConfig, loadConfig } from '../config/app-config.js';
import { createTestDatabase, type Dialect, type TestDatabase } from './dialects.js';

export interface TestApp {
  app: NestExpressApplication;
  config: AppConfig;
  db: TestDatabase;
  http: () => ReturnType<typeof request>;
  /** Creates a session and returns its bearer token and id. */
  newSession: () => Promise<{ token: string; id: string; cookie: string }>;
  close: () => Promise<void>;
}

export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789';

/** A JWT signed with `secret` (by default the test apps' SESSION_SECRET), header and claims as given: tokens the server would not sign. */
export function forgeToken(header: object, payload: object, secret = TEST_SECRET): string {
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${b64(header)}.${b64(payload)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/**
 * The whole application on a fresh database of the given dialect, listening on an
 * ephemeral loopback port. `env` overrides any variable (e.g. shorter timeouts).
 */
export async function createTestApp(dialect: Dialect, env: Record<string, string> = {}, options: { logDestination?: DestinationStream } = {}): Promise<TestApp> {
  const db = await createTestDatabase(dialect);
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: db.dir,
    SESSION_SECRET: TEST_SECRET,
    LLM_PROVIDER: 'offline',
    OFFLINE_TOKEN_DELAY_MS: '0',
    CLIENT_DIR: `${db.dir}/no-client`,
    ...(db.config.type === 'postgres' ? { DATABASE_URL: db.config.url } : { DATABASE_URL: `sqlite:${db.config.path}` }),
    ...env,
  });
  const { app } = await createApp(config, options);
  await app.listen(0, '127.0.0.1');
  const http = () => request(app.getHttpServer());
  return {
    app, config, db, http,
    newSession: async () => {
      const res = await http().post('/api/v1/sessions').send({}).expect(201);
      const body = res.body as { token: string; session: { id: string } };
      const setCookie = res.headers['set-cookie'] as unknown as string[];
      return { token: body.token, id: body.session.id, cookie: setCookie[0].split(';')[0] };
    },
    close: async () => { await app.close(); await db.cleanup(); },
  };
}
