import type Redis from 'ioredis';

/** One fixed window of a counter: which it is (from the epoch) and when it ends. */
export interface FixedWindow {
  index: number;
  endsAt: Date;
}

/**
 * The window `now` falls in. The time comes from the caller's clock, so limits are testable
 * without sleeping, and every instance on the same clock agrees on the window.
 */
export function fixedWindow(now: Date, windowMs: number): FixedWindow {
  const index = Math.floor(now.getTime() / windowMs);
  return { index, endsAt: new Date((index + 1) * windowMs) };
}

/**
 * Adds one to `counter` (a key naming its window) and answers the count, in one round trip; the
 * key expires a window after its last count, so finished windows clean themselves up. Shared by
 * every instance on the Redis server, which is the point: a limit held across instances. The
 * caller decides what an unreachable Redis means (isRedisReady first: a command sent while the
 * client is away would wait in its offline queue).
 */
export async function countInWindow(redis: Redis, counter: string, windowMs: number): Promise<number> {
  const results = await redis.multi().incr(counter).pexpire(counter, windowMs).exec();
  const error = results?.find(([e]) => e)?.[0];
  if (!results || error) throw error ?? new Error(`counter ${counter}: no answer from Redis`);
  return Number(results[0][1]);
}
