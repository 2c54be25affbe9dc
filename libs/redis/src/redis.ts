import Redis, { type RedisOptions } from 'ioredis';

/** Injection token for the shared ioredis client in Nest modules. */
export const REDIS = Symbol('REDIS');

/**
 * The API's client fails fast (a request must not hang on a Redis that is away: it answers 503);
 * BullMQ workers need `maxRetriesPerRequest: null` instead, see workerConnection.
 */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    enableOfflineQueue: true,
    lazyConnect: false,
    ...options,
  });
  // Reconnection is ioredis's job; an unhandled 'error' event would crash the process instead.
  client.on('error', () => undefined);
  return client;
}

/**
 * ioredis options for a URL, for BullMQ producers that must own their connection: BullMQ leaves
 * a shared client's late connection error with no listener when the queue is closed before it
 * connected (an uncaught exception); with its own connection it suppresses that itself. Fails
 * fast like createRedis.
 */
export function producerConnection(url: string): RedisOptions {
  const parsed = new URL(url);
  const db = parsed.pathname.replace('/', '');
  return {
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: db ? Number(db) : 0,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
  };
}

/** A connection for BullMQ workers, which block and must retry forever. */
export function workerConnection(url: string, options: RedisOptions = {}): Redis {
  return createRedis(url, { ...options, maxRetriesPerRequest: null });
}

/** Closes a client and waits for it: QUIT when connected (so no socket outlives its owner), else drop. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
