import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
const COMPOSE = join(ROOT, 'docker-compose.yml');

function findDockerCompose(): string {
  for (const p of ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose']) if (existsSync(p)) return p;
  throw new Error('docker-compose (v1) is not installed: apt-get install -y docker-compose (.ci/run does)');
}

/** `docker-compose config`: validates and resolves the file without a Docker engine. */
function composeConfig(env: Record<string, string>, quiet: boolean): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(findDockerCompose(), ['-f', COMPOSE, '--project-directory', ROOT, 'config', ...(quiet ? ['-q'] : [])], {
    encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, cwd: ROOT,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('docker-compose.yml', () => {
  const secret = 'a-session-secret-for-validation-only-0123456789';
  const database = { POSTGRES_PASSWORD: 'pg-pass-for-validation', DATABASE_URL: 'postgres://parley:pg-pass-for-validation@postgres:5432/parley' };

  it('is valid for docker-compose v1 (`config -q`)', () => {
    const r = composeConfig({ SESSION_SECRET: secret, ...database }, true);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses to start without SESSION_SECRET, or without a database password (no default secret)', () => {
    const r = composeConfig({ ...database }, true);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/SESSION_SECRET/);
    for (const missing of ['POSTGRES_PASSWORD', 'DATABASE_URL'] as const) {
      const env: Record<string, string> = { SESSION_SECRET: secret, ...database };
      delete env[missing];
      const without = composeConfig(env, true);
      expect(without.status).not.toBe(0);
      expect(without.stderr).toMatch(new RegExp(missing));
    }
  });

  it('runs nginx, two backends, PostgreSQL and Redis with healthchecks, named volumes and the deployment variables', () => {
    const r = composeConfig({ SESSION_SECRET: secret, OPENAI_API_KEY: 'sk-test', ...database }, false);
    expect(r.status).toBe(0);
    const out = r.stdout;
    for (const service of ['nginx', 'backend-1', 'backend-2', 'postgres', 'redis']) expect(out).toMatch(new RegExp(`^  ${service}:$`, 'm'));
    expect(out.match(/^ {4}healthcheck:$/gm)?.length).toBe(5);
    // The backends run under an init (PID 1 reaps a scanner's leftover children).
    expect(out.match(/^ {4}init: true$/gm)?.length).toBe(2);
    for (const volume of ['pgdata', 'redisdata', 'appdata']) expect(out).toMatch(new RegExp(`^  ${volume}: \\{\\}$`, 'm'));
    // Both backends share the file volume, and get the same configuration.
    expect(out.match(/- appdata:\/app\/data:rw/g)?.length).toBe(2);
    expect(out.match(/OPENAI_API_KEY: sk-test/g)?.length).toBe(2);
    expect(out.match(/REDIS_URL: redis:\/\/redis:6379/g)?.length).toBe(2);
    expect(out.match(/DATABASE_URL: postgres:\/\/parley:pg-pass-for-validation@postgres:5432\/parley/g)?.length).toBe(2);
    expect(out).toMatch(/POSTGRES_PASSWORD: pg-pass-for-validation/);
    expect(out.match(new RegExp(`SESSION_SECRET: ${secret}`, 'g'))?.length).toBe(2);
    // Unset optional variables are not passed as empty strings (the server would reject those).
    expect(out).not.toMatch(/METRICS_TOKEN: ''/);
    expect(out).not.toMatch(/REDIS_PREFIX: ''/);
  });

  it('passes REDIS_PREFIX to both backends when it is set (a Redis shared with another deployment)', () => {
    const r = composeConfig({ SESSION_SECRET: secret, REDIS_PREFIX: 'staging:', ...database }, false);
    expect(r.status).toBe(0);
    expect(r.stdout.match(/REDIS_PREFIX: '?staging:'?$/gm)?.length).toBe(2);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('builds once on Node 24 with the commands CI runs, and runs as a non-root user with production dependencies only', () => {
    expect(dockerfile).toMatch(/^FROM node:24-bookworm AS build$/m);
    expect(dockerfile).toMatch(/^RUN npm ci\b/m);
    expect(dockerfile).toMatch(/^RUN npm run build$/m);
    expect(dockerfile).toMatch(/^RUN npm prune --omit=dev\b/m);
    expect(dockerfile).not.toMatch(/--omit=optional/);
    const app = dockerfile.slice(dockerfile.indexOf('AS app'));
    expect(app).toMatch(/^USER node$/m);
    // The same node flags as `npm start` (the benchmarks run the server with those too).
    // Less the `exec` the script starts with (npm's shell hands its process to node; the image has no shell between).
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    const start = script.replace(/^exec /, '').split(' ');
    expect(start.at(-1)).toBe('dist/server/main.js');
    expect(app).toContain(`CMD ${JSON.stringify(start)}`.replaceAll('","', '", "'));
    expect(dockerfile).toMatch(/^FROM nginx:[\w.-]+ AS gateway$/m);
    expect(dockerfile).toMatch(/^COPY nginx\/nginx\.conf \/etc\/nginx\/nginx\.conf$/m);
  });

  it('keeps local data, secrets and build output out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    // backup: README's SQLite backups, which hold the session secret.
    for (const entry of ['node_modules', 'dist', 'data', '.env', '.git', 'backup']) expect(ignored).toContain(entry);
  });
});
