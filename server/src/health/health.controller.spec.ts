import { Writable } from 'node:stream';
import type { HttpAdapterHost } from '@nestjs/core';
import express from 'express';
import request from 'supertest';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { HealthService } from './health.service.js';
import { ShutdownService } from './shutdown.service.js';

describe('liveness and readiness', () => {
  describe('without Redis', () => {
    let t: TestApp;
    beforeAll(async () => { t = await createTestApp('sqlite'); });
    afterAll(async () => { await t.close(); });

    it('is live and ready with the database only', async () => {
      expect((await t.http().get('/api/v1/health/live').expect(200)).body).toEqual({ status: 'ok' });
      const ready = await t.http().get('/api/v1/health/ready').expect(200);
      expect(ready.body).toEqual({ status: 'ok', checks: { database: 'ok', storage: 'ok', accepting: 'ok' } });
    });

    it('reads the data disk\'s free space at most every few seconds, however often it is probed', async () => {
      const health = t.app.get(HealthService);
      const first = health.checkStorage();
      expect(health.checkStorage()).toBe(first);
      expect(await first).toBe('ok');
    });

    it('on drain: stops accepting connections, turns unready, runs the drainers with the grace period', async () => {
      const shutdown = t.app.get(ShutdownService);
      const url = await t.app.getUrl();
      let drainedWith: number | undefined;
      shutdown.register('test', (graceMs) => { drainedWith = graceMs; return Promise.resolve(); });
      await shutdown.drain(1234);
      expect(drainedWith).toBe(1234);
      expect((await t.app.get(HealthService).readiness()).checks.accepting).toBe('down');
      await expect(fetch(`${url}/api/v1/health/live`)).rejects.toThrow();
    });

    it('answers requests that still arrive (kept-alive connections) with 503 and Connection: close', async () => {
      const shutdown = new ShutdownService(t.config, { httpAdapter: undefined } as unknown as HttpAdapterHost);
      const app = express().use(shutdown.middleware()).get('/api/v1/x', (_req, res) => { res.json({}); }).get('/api/v1/health/live', (_req, res) => { res.json({}); });
      await request(app).get('/api/v1/x').expect(200);
      await shutdown.drain(0);
      const refused = await request(app).get('/api/v1/x').expect(503);
      expect(refused.body.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(refused.headers.connection).toBe('close');
      await request(app).get('/api/v1/health/live').expect(200);
    });
  });

  describe('the data disk', () => {
    it('is unready (503, check "storage") while DATA_DIR\'s disk has less free space than READY_MIN_FREE_BYTES, and stays live', async () => {
      const lines: Array<{ level: number; msg: string; dataDir?: string }> = [];
      const sink = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
      const t = await createTestApp('sqlite', { READY_MIN_FREE_BYTES: String(Number.MAX_SAFE_INTEGER), LOG_LEVEL: 'error' }, { logDestination: sink });
      try {
        const ready = await t.http().get('/api/v1/health/ready').expect(503);
        expect(ready.body).toEqual({ status: 'down', checks: { database: 'ok', storage: 'down', accepting: 'ok' } });
        await t.http().get('/api/v1/health/live').expect(200);
        await vi.waitFor(() => expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: expect.stringMatching(/disk is full/), dataDir: t.config.dataDir })));
      } finally {
        await t.close();
      }
    });

    it('counts a disk that does not answer (a network mount gone) as down after 2 s, and reads it once at a time', async () => {
      const lines: Array<{ level: number; msg: string; timeoutMs?: number }> = [];
      const sink = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
      const t = await createTestApp('sqlite', { LOG_LEVEL: 'error' }, { logDestination: sink });
      const health = t.app.get(HealthService);
      let release!: (bytes: number) => void;
      const reads = vi.spyOn(health as unknown as { freeBytes: (dir: string) => Promise<number> }, 'freeBytes')
        .mockImplementation(() => new Promise<number>((resolve) => { release = resolve; }));
      const clock = vi.spyOn(Date, 'now');
      try {
        const began = performance.now();
        const ready = await t.http().get('/api/v1/health/ready').expect(503);
        expect(performance.now() - began).toBeLessThan(10_000);
        expect(ready.body.checks).toEqual({ database: 'ok', storage: 'down', accepting: 'ok' });
        await vi.waitFor(() => expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: expect.stringMatching(/does not answer/), timeoutMs: 2000 })));
        // Past the cache: the next check waits on the same read instead of starting another.
        clock.mockReturnValue(performance.timeOrigin + performance.now() + 60_000);
        expect(await health.checkStorage()).toBe('down');
        expect(reads).toHaveBeenCalledTimes(1);
        // The disk answers again: the read after it is a new one.
        release(Number.MAX_SAFE_INTEGER);
        await new Promise((resolve) => setImmediate(resolve));
        clock.mockReturnValue(performance.timeOrigin + performance.now() + 120_000);
        reads.mockResolvedValue(Number.MAX_SAFE_INTEGER);
        expect(await health.checkStorage()).toBe('ok');
        expect(reads).toHaveBeenCalledTimes(2);
      } finally {
        clock.mockRestore();
        await t.close();
      }
    }, 30_000);

    it.runIf(dialects().includes('postgres'))('on PostgreSQL leaves the disk out of readiness: it holds only the uploads, shared by every instance', async () => {
      const t = await createTestApp('postgres', { READY_MIN_FREE_BYTES: String(Number.MAX_SAFE_INTEGER) });
      try {
        expect((await t.http().get('/api/v1/health/ready').expect(200)).body.checks).toEqual({ database: 'ok', accepting: 'ok' });
      } finally {
        await t.close();
      }
    });

    it('stays ready under STORAGE_MIN_FREE_BYTES (that only pauses uploads)', async () => {
      const t = await createTestApp('sqlite', { STORAGE_MIN_FREE_BYTES: String(Number.MAX_SAFE_INTEGER) });
      try {
        expect((await t.http().get('/api/v1/health/ready').expect(200)).body.checks.storage).toBe('ok');
      } finally {
        await t.close();
      }
    });
  });

  describe('with Redis', () => {
    it('reports Redis in readiness and health', async () => {
      const t = await createTestApp('sqlite', { REDIS_URL: 'redis://127.0.0.1:6379' });
      try {
        expect((await t.http().get('/api/v1/health/ready').expect(200)).body.checks).toEqual({ database: 'ok', redis: 'ok', storage: 'ok', accepting: 'ok' });
        expect((await t.http().get('/api/v1/health').expect(200)).body.checks).toEqual({ database: 'ok', redis: 'ok' });
      } finally {
        await t.close();
      }
    });

    it('is unready while Redis is unreachable and rate-limited routes answer 503 SERVICE_UNAVAILABLE', async () => {
      const t = await createTestApp('sqlite', { REDIS_URL: 'redis://127.0.0.1:1' });
      try {
        const ready = await t.http().get('/api/v1/health/ready').expect(503);
        expect(ready.body.checks.redis).toBe('down');
        await t.http().get('/api/v1/health/live').expect(200);
        const res = await t.http().post('/api/v1/sessions').send({}).expect(503);
        expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
        expect(res.headers['retry-after']).toBe('5');
      } finally {
        await t.close();
      }
    });
  });
});
