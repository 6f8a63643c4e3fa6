import { AppException } from '../common/app.exception.js';
import { SessionUploads, UPLOADS_IN_FLIGHT_PER_SESSION } from './session-uploads.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

describe('SessionUploads', () => {
  it('lets a session have two uploads in flight, refuses a third with 429 and Retry-After, and counts each release once', () => {
    const uploads = new SessionUploads();
    expect(UPLOADS_IN_FLIGHT_PER_SESSION).toBe(2);
    const a = uploads.take('s1');
    uploads.take('s1');
    let refusal: unknown;
    try { uploads.take('s1'); } catch (err) { refusal = err; }
    expect(refusal).toBeInstanceOf(AppException);
    expect(refusal).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', headers: { 'Retry-After': expect.stringMatching(/^[1-9]\d*$/) } });
    expect(uploads.take('s2')).toBeTypeOf('function');
    a();
    a();
    expect(uploads.inFlightFor('s1')).toBe(1);
    uploads.take('s1');
    expect(() => uploads.take('s1')).toThrow(/still being read/);
  });

  it('runs one extraction per session at a time, the next after the last even when it failed; other sessions do not wait', async () => {
    const uploads = new SessionUploads();
    const started: string[] = [];
    const first = deferred();
    const second = deferred();
    const run = (name: string, gate: Promise<void>) => () => { started.push(name); return gate; };
    const one = uploads.oneAtATime('s1', run('s1-a', first.promise));
    const two = uploads.oneAtATime('s1', run('s1-b', second.promise));
    const other = uploads.oneAtATime('s2', run('s2-a', Promise.resolve()));
    await other;
    expect(started).toEqual(['s1-a', 's2-a']);
    first.reject(new Error('refused'));
    await expect(one).rejects.toThrow('refused');
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['s1-a', 's2-a', 's1-b']);
    second.resolve();
    await two;
  });
});
