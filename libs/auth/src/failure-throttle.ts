import type Redis from 'ioredis';
import { ipAddressBytes } from '@keyward/core';
import { countInWindow, fixedWindow, isRedisReady } from '@keyward/redis';

/** How many failed authentications one source may make in one window before it is throttled. */
export interface AuthFailureLimit {
  limit: number;
  windowMs: number;
}

/**
 * One failed authentication, counted: whether the source is now over its limit, when its window
 * ends, and where the count came from: `shared` (Redis, every instance's failures) or `local`
 * (this instance alone, while Redis could not be reached).
 */
export interface CountedFailure {
  throttled: boolean;
  windowEndsAt: Date;
  counter: 'shared' | 'local';
  /** This failure took the source over the limit: the first one refused in its window. */
  crossed: boolean;
}

interface LocalCount {
  window: number;
  count: number;
  counter: 'shared' | 'local';
}

/** Sources whose counts an instance keeps in memory; past this the least recently failing go. */
const LOCAL_SOURCES = 10_000;

/**
 * Failed authentications per source in a fixed window, in Redis so every instance shares the
 * limit. Only failures are counted, so a valid credential never costs a Redis round trip (the
 * caller checks the credential first and comes here only when it failed).
 *
 * Each instance also keeps the counts it last saw, for two things: a source already over its
 * limit in this window is answered from memory (a flood of bad tokens costs Redis nothing more,
 * and the shared count is over the limit already), and while Redis cannot be reached failures
 * are counted here instead, from the last shared count seen, so the limit still holds on each
 * instance (not across them) rather than the answer becoming a 503 or the limit vanishing.
 */
export class AuthFailureThrottle {
  private readonly local = new Map<string, LocalCount>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly limit: AuthFailureLimit,
    private readonly localSources = LOCAL_SOURCES,
  ) {}

  async failed(sourceIp: string, now: Date): Promise<CountedFailure> {
    const source = failureSource(sourceIp);
    const window = fixedWindow(now, this.limit.windowMs);
    const known = this.local.get(source);
    const entry: LocalCount =
      known && known.window === window.index ? known : { window: window.index, count: 0, counter: 'local' };
    if (entry.count > this.limit.limit) {
      return { throttled: true, windowEndsAt: window.endsAt, counter: entry.counter, crossed: false };
    }
    const shared = await this.countShared(source, window.index);
    if (shared === null) {
      entry.count += 1;
      entry.counter = 'local';
    } else {
      // Never below what this instance counted itself, should Redis have lost the counter.
      entry.count = Math.max(entry.count + 1, shared);
      entry.counter = 'shared';
    }
    this.remember(source, entry);
    const throttled = entry.count > this.limit.limit;
    return {
      throttled,
      windowEndsAt: window.endsAt,
      counter: entry.counter,
      crossed: throttled && (shared ?? entry.count) === this.limit.limit + 1,
    };
  }

  /** The shared count after this failure, or null when Redis cannot be reached now. */
  private async countShared(source: string, window: number): Promise<number | null> {
    if (!isRedisReady(this.redis)) return null;
    try {
      return await countInWindow(
        this.redis,
        `${this.prefix}:auth-failures:${source}:${window}`,
        this.limit.windowMs,
      );
    } catch {
      // Timed out (the hot-path client's command bound) or the connection broke mid-command.
      return null;
    }
  }

  private remember(source: string, entry: LocalCount): void {
    // Re-inserted so the Map's order is least recently failing first.
    this.local.delete(source);
    this.local.set(source, entry);
    if (this.local.size > this.localSources) {
      const oldest = this.local.keys().next().value;
      if (oldest !== undefined) this.local.delete(oldest);
    }
  }
}

/**
 * The source a failure is counted against: an IPv4 address (also when written IPv4-mapped), or
 * an IPv6 address's /64, since one host or customer is commonly given a whole /64 and could
 * otherwise take a fresh address for every few guesses. Something that is no address at all (a
 * trusted proxy passing on a garbled X-Forwarded-For) is counted as one source, `not-an-address`,
 * rather than as a Redis key of whatever text it was.
 */
export function failureSource(ip: string): string {
  const bytes = ipAddressBytes(ip.split('%')[0]);
  if (!bytes) return 'not-an-address';
  if (bytes.length === 4) return bytes.join('.');
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.slice(12).join('.');
  const groups = [0, 2, 4, 6].map((i) => ((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return `${groups.join(':')}::/64`;
}
