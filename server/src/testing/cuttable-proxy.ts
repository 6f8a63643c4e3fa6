import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from '../deploy/topology.js';
import { createScratchDatabase, PG_ADMIN_URL } from './postgres.js';

/** A TCP relay in front of PostgreSQL that can be cut (an outage) and restored on the same port. */
export class CuttableProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  constructor(readonly port: number, private readonly target: { host: string; port: number }) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A scratch PostgreSQL database reached through a CuttableProxy (up): its URL through the proxy, the proxy, and the cleanup. */
export async function postgresBehindProxy(): Promise<{ url: string; proxy: CuttableProxy; close: () => Promise<void> }> {
  const db = await createScratchDatabase();
  const admin = new URL(PG_ADMIN_URL);
  const proxy = new CuttableProxy(await freePort(), { host: admin.hostname, port: Number(admin.port || 5432) });
  await proxy.up();
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  return { url: viaProxy.toString(), proxy, close: async () => { await proxy.down(); await db.drop(); } };
}
