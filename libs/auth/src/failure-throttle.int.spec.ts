import Redis from 'ioredis';
import { testRedisPrefix } from '../../../test/support/database';
import { TEST_REDIS_URL } from '../../../test/support/env';
import { AuthFailureThrottle } from './failure-throttle';

/** The throttle on its own, against the real Redis: the shared count, memory, and Redis gone. */

const WINDOW_MS = 60_000;
const NOW = new Date('2026-03-01T09:00:10.000Z');

let redis: Redis;
let prefix: string;

beforeEach(async () => {
  redis = new Redis(TEST_REDIS_URL);
  await redis.ping();
  prefix = testRedisPrefix();
});
// The counters expire with their window (a minute); the prefix is this file's own.
afterEach(() => redis.disconnect());

it('counts in Redis under the source and window, expiring with the window', async () => {
  const throttle = new AuthFailureThrottle(redis, prefix, { limit: 2, windowMs: WINDOW_MS });
  const results = [];
  for (let i = 0; i < 3; i++) results.push(await throttle.failed('203.0.113.9', NOW));
  expect(results.map((r) => [r.throttled, r.crossed, r.counter])).toEqual([
    [false, false, 'shared'],
    [false, false, 'shared'],
    [true, true, 'shared'],
  ]);
  expect(results[2].windowEndsAt.toISOString()).toBe('2026-03-01T09:01:00.000Z');
  const counter = `${prefix}:auth-failures:203.0.113.9:${Math.floor(NOW.getTime() / WINDOW_MS)}`;
  expect(await redis.get(counter)).toBe('3');
  const ttl = await redis.pttl(counter);
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
});

it('two throttles on one Redis share the count; the one that crosses says so, once', async () => {
  const a = new AuthFailureThrottle(redis, prefix, { limit: 3, windowMs: WINDOW_MS });
  const b = new AuthFailureThrottle(redis, prefix, { limit: 3, windowMs: WINDOW_MS });
  await a.failed('203.0.113.9', NOW);
  await b.failed('203.0.113.9', NOW);
  await a.failed('203.0.113.9', NOW);
  const fourth = await b.failed('203.0.113.9', NOW);
  const fifth = await a.failed('203.0.113.9', NOW);
  expect([fourth.throttled, fourth.crossed]).toEqual([true, true]);
  expect([fifth.throttled, fifth.crossed]).toEqual([true, false]);
});

it('answers a source already over its limit from memory, with Redis not asked (or gone)', async () => {
  const throttle = new AuthFailureThrottle(redis, prefix, { limit: 1, windowMs: WINDOW_MS });
  await throttle.failed('203.0.113.9', NOW);
  expect((await throttle.failed('203.0.113.9', NOW)).throttled).toBe(true);
  redis.disconnect();
  const later = await throttle.failed('203.0.113.9', NOW);
  expect(later).toEqual(expect.objectContaining({ throttled: true, counter: 'shared', crossed: false }));
  // The next window starts over, here counted locally since Redis is gone.
  const next = await throttle.failed('203.0.113.9', new Date(NOW.getTime() + WINDOW_MS));
  expect(next).toEqual(expect.objectContaining({ throttled: false, counter: 'local' }));
});

it('with Redis unreachable counts on from the last shared count it saw', async () => {
  const throttle = new AuthFailureThrottle(redis, prefix, { limit: 3, windowMs: WINDOW_MS });
  await throttle.failed('203.0.113.9', NOW);
  await throttle.failed('203.0.113.9', NOW);
  redis.disconnect();
  const third = await throttle.failed('203.0.113.9', NOW);
  const fourth = await throttle.failed('203.0.113.9', NOW);
  expect([third.counter, third.throttled]).toEqual(['local', false]);
  expect([fourth.counter, fourth.throttled, fourth.crossed]).toEqual(['local', true, true]);
});

it('keeps at most its bound of sources in memory, dropping the least recently failing first', async () => {
  const throttle = new AuthFailureThrottle(redis, prefix, { limit: 1, windowMs: WINDOW_MS }, 2);
  redis.disconnect(); // counted locally, so memory is all there is
  await throttle.failed('192.0.2.1', NOW);
  await throttle.failed('192.0.2.2', NOW);
  await throttle.failed('192.0.2.1', NOW); // .1 is over its limit, and now the most recent
  await throttle.failed('192.0.2.3', NOW); // .2 is dropped
  expect((await throttle.failed('192.0.2.1', NOW)).throttled).toBe(true);
  expect((await throttle.failed('192.0.2.2', NOW)).throttled).toBe(false); // counted afresh
});
