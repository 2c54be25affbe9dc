import type Redis from 'ioredis';
import { Unavailable } from '@keyward/core';
import { countInWindow, fixedWindow, isRedisReady } from '@keyward/redis';
import type { RateLimit } from './key.events';

export interface RateLimitState {
  allowed: boolean;
  remaining: number;
  resetAt: Date;
}

/**
 * A fixed-window counter per key in Redis (countInWindow), so the limit holds across every API
 * instance.
 *
 * On the verify path, so it never waits for Redis to come back: while the client is not connected
 * it throws Unavailable at once (a queued INCR would hold the answer until a reconnection and then
 * count late), and a connected Redis that does not answer is bounded by the client's
 * commandTimeout (createHotPathRedis). Either way the verify answers 503, never valid.
 */
export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async take(keyId: string, limit: RateLimit, now: Date): Promise<RateLimitState> {
    const windowMs = limit.windowSeconds * 1000;
    const window = fixedWindow(now, windowMs);
    if (!isRedisReady(this.redis)) throw new Unavailable('the rate limit counter is unreachable');
    const count = await countInWindow(this.redis, `${this.prefix}:rl:${keyId}:${window.index}`, windowMs);
    return {
      allowed: count <= limit.limit,
      remaining: Math.max(0, limit.limit - count),
      resetAt: window.endsAt,
    };
  }
}
