import Redis, { type RedisOptions } from 'ioredis';

/** Injection token for the shared ioredis client in Nest modules. */
export const REDIS = Symbol('REDIS');

/**
 * The longest a request waits on one Redis command (the verify rate limit) before answering 503.
 * ioredis's `commandTimeout`: a Redis that accepts the connection but never answers would
 * otherwise hold the request for as long as the socket stays open.
 */
export const HOT_PATH_TIMEOUT_MS = 50;

/**
 * A connection on which a command has waited this long with no byte back is taken for dead
 * (ioredis's `socketTimeout` destroys it and reconnects), so a hung Redis shows as "not
 * connected" and later commands fail at once instead of each waiting out a timeout. Only for
 * connections that never block (BullMQ workers' BZPOPMIN would be cut).
 */
export const DEAD_CONNECTION_MS = 1_000;

/**
 * A client that fails fast (a request must not hang on a Redis that is away: it answers 503);
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
  if (options.socketTimeout !== undefined) clearSocketTimeoutOnClose(client);
  return client;
}

/**
 * ioredis 5 keeps the socketTimeout timer of a connection that closed with a command unanswered,
 * and when it fires it destroys the connection that replaced it, healthy or not (ioredis 6 clears
 * it on close). Cleared here on every close instead, so a reconnection after Redis came back
 * is not cut a second later. For every client made with `socketTimeout`.
 */
export function clearSocketTimeoutOnClose(client: Redis): void {
  const internals = client as unknown as { socketTimeoutTimer?: NodeJS.Timeout };
  client.on('close', () => {
    clearTimeout(internals.socketTimeoutTimer);
    internals.socketTimeoutTimer = undefined;
  });
}

/**
 * The API's shared client, on the request path: every command is bounded by HOT_PATH_TIMEOUT_MS
 * and a silent connection is dropped after DEAD_CONNECTION_MS (see isRedisReady for not even
 * queueing a command while it is away).
 */
export function createHotPathRedis(url: string): Redis {
  return createRedis(url, { commandTimeout: HOT_PATH_TIMEOUT_MS, socketTimeout: DEAD_CONNECTION_MS });
}

/**
 * Whether `client` is connected and past its handshake. A command sent otherwise waits in
 * ioredis's offline queue (for a reconnection that may take seconds) and is sent late, so the
 * request path refuses at once instead.
 */
export function isRedisReady(client: Redis): boolean {
  return client.status === 'ready';
}

/**
 * ioredis options for a URL, for BullMQ producers that must own their connection: BullMQ leaves
 * a shared client's late connection error with no listener when the queue is closed before it
 * connected (an uncaught exception); with its own connection it suppresses that itself. Fails
 * fast like createRedis, and a silent connection (a hung Redis) is dropped after
 * DEAD_CONNECTION_MS instead of holding its commands for as long as the socket stays open; a
 * producer connection never blocks. The offline queue stays on: BullMQ's close sends QUIT, which
 * without one is refused while disconnected, and the failed close leaves the client reconnecting.
 * So an `add` while Redis is away waits for the reconnection: the API queues after the answer.
 * (BullMQ makes this client, so clearSocketTimeoutOnClose cannot be applied: after Redis comes
 * back a producer connection may be cut once more, a second later, and reconnect.)
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
    socketTimeout: DEAD_CONNECTION_MS,
  };
}

/** A connection for BullMQ workers, which block and must retry forever. */
export function workerConnection(url: string, options: RedisOptions = {}): Redis {
  return createRedis(url, { ...options, maxRetriesPerRequest: null });
}

/**
 * Closes a client and waits for it: QUIT when connected (so no socket outlives its owner), else
 * drop. A QUIT that gets no answer (a hung Redis) is given up after DEAD_CONNECTION_MS.
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const unanswered = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, DEAD_CONNECTION_MS);
  });
  await Promise.race([
    client.quit().then(
      () => undefined,
      () => undefined,
    ),
    unanswered,
  ]);
  clearTimeout(timer);
  // After a QUIT that was answered this does nothing; after one that was not, it drops the socket.
  client.disconnect();
}
