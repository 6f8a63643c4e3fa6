import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';

/** How long boot waits for Redis before starting anyway (readiness then reports it down). */
const BOOT_WAIT_MS = 5_000;
const PING_TIMEOUT_MS = 1_000;

/**
 * Fail fast while Redis is away: no offline queue, short command timeout, reconnect forever.
 * Callers turn a failed command into 503 SERVICE_UNAVAILABLE; service comes back by itself.
 */
export function redisOptions(overrides: RedisOptions = {}): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    connectTimeout: 3_000,
    retryStrategy: (times) => Math.min(100 * times, 1_000),
    ...overrides,
  };
}

/**
 * The one Redis connection of an instance (the outside system "Redis"), present only when
 * REDIS_URL is set; without it a single instance keeps its state in memory.
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  readonly client: Redis | undefined;
  /**
   * REDIS_PREFIX: every key and channel of this deployment starts with it. Each user adds its own
   * part after it (`gen:`, `lock:`, `throttle:`), so one prefix names a whole deployment.
   */
  readonly prefix: string;
  private readonly subscribers: Redis[] = [];
  private readonly flushers: (() => Promise<void>)[] = [];

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.prefix = config.redisPrefix;
    if (config.redisUrl) {
      // CLIENT LIST then tells the deployments sharing this Redis apart too.
      this.client = new Redis(config.redisUrl, redisOptions({ connectionName: `${config.redisPrefix}${config.instanceId}` }));
      this.client.on('error', this.errorLogger('Redis connection error'));
      this.client.on('ready', () => this.logger.log('Redis connection ready'));
    }
  }

  /** While Redis is away every reconnect attempt fails; one line per connection every 30 s is enough. */
  private errorLogger(msg: string): (err: Error) => void {
    let last = 0;
    return (err) => {
      if (Date.now() - last < 30_000) return;
      last = Date.now();
      this.logger.warn({ err: err.message }, msg);
    };
  }

  get isEnabled(): boolean {
    return this.client !== undefined;
  }

  async onModuleInit(): Promise<void> {
    const client = this.client;
    if (!client || client.status === 'ready') return;
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), BOOT_WAIT_MS);
      client.once('ready', () => { clearTimeout(timer); resolve(true); });
    });
    if (!ready) this.logger.warn('Redis is not reachable yet; starting anyway and reconnecting in the background');
  }

  /**
   * A separate connection in subscriber mode (pub/sub cannot share the command connection).
   * It queues commands while disconnected and re-subscribes after a reconnect.
   *
   * No ready check (INFO) and no client info (CLIENT SETINFO) on it: ioredis 5 sends those after
   * connecting, and a SUBSCRIBE issued meanwhile puts the connection in subscriber mode first, so
   * the INFO fails ("Connection in subscriber mode") and the subscription with it (ioredis issue
   * #2037, fixed in 6.0). Neither is of use on a connection that only subscribes.
   */
  createSubscriber(): Redis {
    if (!this.client) throw new Error('Redis is not configured');
    const sub = this.client.duplicate(redisOptions({
      enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined, enableReadyCheck: false, disableClientInfo: true,
    }));
    sub.on('error', this.errorLogger('Redis subscriber error'));
    this.subscribers.push(sub);
    return sub;
  }

  /** Work to finish (pending writes) before the connection quits at shutdown. */
  beforeQuit(flush: () => Promise<void>): void {
    this.flushers.push(flush);
  }

  /** 'ok' when a PING answers quickly; undefined when Redis is not configured. */
  async check(): Promise<'ok' | 'down' | undefined> {
    const client = this.client;
    if (!client) return undefined;
    if (client.status !== 'ready') return 'down';
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.ping(),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS); }),
      ]);
      return 'ok';
    } catch {
      // The result itself says Redis is unreachable.
      return 'down';
    } finally {
      clearTimeout(timer);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled(this.flushers.map((f) => f()));
    for (const conn of [...this.subscribers, this.client]) {
      if (!conn) continue;
      // quit() waits for pending replies but hangs while disconnected; disconnect() then.
      if (conn.status === 'ready') await conn.quit().catch(() => conn.disconnect());
      else conn.disconnect();
    }
  }
}
