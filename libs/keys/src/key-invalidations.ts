import Redis from 'ioredis';
import type { RecordedEvent } from '@keyward/event-store';
import { clearSocketTimeoutOnClose, closeRedis, isRedisReady } from '@keyward/redis';
import { invalidationFor, type InvalidationTarget, type KeyInvalidation } from './key-cache';

/**
 * The subscriber PINGs this often, and a PING (or any command) left unanswered for
 * SUBSCRIPTION_SILENCE_MS drops the connection: a Redis that hangs keeps the socket open and
 * delivers nothing, and without a heartbeat the subscription would look live while messages are
 * lost. So the cache is distrusted within HEARTBEAT_MS + SUBSCRIPTION_SILENCE_MS of Redis going
 * silent, under the second API.md allows for a change to reach every instance.
 */
export const SUBSCRIPTION_HEARTBEAT_MS = 250;
export const SUBSCRIPTION_SILENCE_MS = 500;

export interface KeyInvalidationsOptions {
  redisUrl: string;
  redisPrefix: string;
  /** Reports a failure that does not fail a request (a publish after commit, a bad message). */
  onError: (error: unknown, message: string) => void;
}

export function keyInvalidationsChannel(redisPrefix: string): string {
  return `${redisPrefix}:key-invalidations`;
}

/**
 * Tells every API instance which cached keys, accounts and operators the committed events changed. Also how
 * the worker's appends (a key revoked as unused, a rotation's replacement revoked) reach the
 * verify caches, so none of them waits out the cache lifetime. Answers whether it published.
 */
export async function publishKeyInvalidations(
  publisher: Redis,
  redisPrefix: string,
  events: readonly RecordedEvent[],
): Promise<boolean> {
  const invalidation = invalidationFor(events);
  if (!invalidation) return false;
  await publisher.publish(keyInvalidationsChannel(redisPrefix), JSON.stringify(invalidation));
  return true;
}

/**
 * Carries key invalidations between API instances over Redis pub/sub and keeps the local
 * caches (keys, operator credentials) honest: they are trusted only while this instance's
 * subscription is live. When the subscriber connection drops, or goes silent (a hung Redis: see SUBSCRIPTION_HEARTBEAT_MS),
 * messages sent meanwhile are lost, so the cache is emptied and bypassed until the channel is
 * subscribed again.
 *
 * Publishing never holds a committed write's answer: the local cache is invalidated before the
 * answer, the message is handed to the socket in the same tick and its acknowledgement is not
 * awaited; with Redis away nothing is queued (a publish would otherwise wait for a reconnection).
 * A lost publish leaves other instances' entries to die within the cache lifetime, and those
 * instances, if they lost Redis too, do not trust their caches at all.
 */
export class KeyInvalidations {
  readonly channel: string;
  private subscriber: Redis | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    /** The shared fail-fast client; a subscribed connection cannot publish. */
    private readonly publisher: Redis,
    /** The key cache, and the operator credential cache where the instance has one. */
    private readonly caches: readonly InvalidationTarget[],
    private readonly options: KeyInvalidationsOptions,
  ) {
    this.channel = keyInvalidationsChannel(options.redisPrefix);
  }

  /** Connects the subscriber; returns without waiting when Redis is away (ioredis keeps trying). */
  async start(): Promise<void> {
    // Resubscribing is done here on every 'ready', so ioredis's own resubscribe is off.
    const subscriber = new Redis(this.options.redisUrl, {
      lazyConnect: true,
      autoResubscribe: false,
      // Named after its channel, so an operator (or a test) can find it in CLIENT LIST.
      connectionName: this.channel,
      maxRetriesPerRequest: null,
      socketTimeout: SUBSCRIPTION_SILENCE_MS,
    });
    this.subscriber = subscriber;
    clearSocketTimeoutOnClose(subscriber);
    this.heartbeat = setInterval(() => {
      if (isRedisReady(subscriber)) subscriber.ping().catch(() => undefined);
    }, SUBSCRIPTION_HEARTBEAT_MS);
    this.heartbeat.unref();
    subscriber.on('error', () => undefined);
    subscriber.on('close', () => this.each((cache) => cache.disable()));
    subscriber.on('message', (_channel: string, message: string) => this.receive(message));
    const subscribe = () =>
      subscriber.subscribe(this.channel).then(
        () => this.each((cache) => cache.enable()),
        (error: unknown) => this.options.onError(error, 'could not subscribe to key invalidations'),
      );
    let started = false;
    subscriber.on('ready', () => {
      if (started) void subscribe();
    });
    await subscriber.connect().catch(() => undefined);
    if (subscriber.status === 'ready') await subscribe();
    // From here on every reconnection subscribes again (and only then trusts the cache again).
    started = true;
  }

  /**
   * After-commit listener: drops stale entries here at once, then tells every other instance
   * without waiting for Redis to acknowledge (see the class comment).
   */
  committed(events: readonly RecordedEvent[]): void {
    const invalidation = invalidationFor(events);
    if (!invalidation) return;
    this.each((cache) => cache.invalidate(invalidation));
    const unpublished = (error: unknown) =>
      // The change is committed; other instances drop the entry when it expires on its own.
      this.options.onError(
        error,
        'could not publish a key invalidation; other instances catch up within the cache lifetime',
      );
    if (!isRedisReady(this.publisher)) {
      unpublished(new Error('Redis is not connected'));
      return;
    }
    publishKeyInvalidations(this.publisher, this.options.redisPrefix, events).catch(unpublished);
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    const subscriber = this.subscriber;
    this.subscriber = null;
    this.each((cache) => cache.disable());
    if (!subscriber) return;
    await closeRedis(subscriber);
  }

  private each(act: (cache: InvalidationTarget) => void): void {
    for (const cache of this.caches) act(cache);
  }

  private receive(message: string): void {
    const invalidation = parseInvalidation(message);
    if (invalidation) {
      this.each((cache) => cache.invalidate(invalidation));
    } else {
      // Something else wrote to the channel: forget everything rather than guess.
      this.each((cache) => cache.clear());
      this.options.onError(
        new Error('unreadable key invalidation'),
        'unreadable key invalidation; cache cleared',
      );
    }
  }
}

function parseInvalidation(message: string): KeyInvalidation | null {
  try {
    const value = JSON.parse(message) as Partial<KeyInvalidation>;
    const strings = (list: unknown): list is string[] =>
      Array.isArray(list) && list.every((item) => typeof item === 'string');
    return strings(value.keys) && strings(value.accounts) && strings(value.operators)
      ? { keys: value.keys, accounts: value.accounts, operators: value.operators }
      : null;
  } catch {
    return null;
  }
}
