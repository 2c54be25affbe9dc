import type Redis from 'ioredis';
import { Unavailable } from '@keyward/core';
import { isRedisReady } from '@keyward/redis';
import type { RateLimit } from './key.events';

export interface RateLimitState {
  allowed: boolean;
  remaining: number;
  resetAt: Date;
}

/**
 * A fixed-window counter per key in Redis, so the limit holds across every API instance. The
 * window comes from the caller's clock (testable without sleeping); the counter expires with it.
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
    const window = Math.floor(now.getTime() / windowMs);
    const counter = `${this.prefix}:rl:${keyId}:${window}`;
    if (!isRedisReady(this.redis)) throw new Unavailable('the rate limit counter is unreachable');
    const results = await this.redis.multi().incr(counter).pexpire(counter, windowMs).exec();
    const error = results?.find(([e]) => e)?.[0];
    if (!results || error) throw error ?? new Error('rate limit counter: no answer from Redis');
    const count = Number(results[0][1]);
    return {
      allowed: count <= limit.limit,
      remaining: Math.max(0, limit.limit - count),
      resetAt: new Date((window + 1) * windowMs),
    };
  }
}
