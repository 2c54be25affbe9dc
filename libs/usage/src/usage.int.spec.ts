import type Redis from 'ioredis';
import type { Verification } from '@keyward/keys';
import { closeRedis, createRedis } from '@keyward/redis';
import { createTestDatabase, testRedisPrefix, type TestDatabase } from '../../../test/support/database';
import { TEST_REDIS_URL } from '../../../test/support/env';
import { UsageBuffer } from './usage-buffer';
import { UsageCounters } from './usage-counters';
import { flushUsage } from './usage-flush';
import { UsageReader } from './usage.reader';

/** Usage through the real Redis and PostgreSQL: buffer, counters, flush and the reader. */
let database: TestDatabase;
let redis: Redis;
let prefix: string;
let counters: UsageCounters;
const errors: string[] = [];

function buffer(client: Redis = redis, maxCells = 10_000): UsageBuffer {
  return new UsageBuffer(new UsageCounters(client, prefix), {
    intervalMs: 1_000,
    maxCells,
    onError: (_error, message) => errors.push(message),
  });
}

function verification(overrides: Partial<Verification> = {}): Verification {
  return {
    tenantId: 'acme',
    keyId: 'key_a',
    serviceAccountId: 'sa_1',
    code: 'ALLOWED',
    sourceIp: '10.0.0.1',
    system: 'zendesk',
    at: new Date('2026-03-01T09:00:30Z'),
    ...overrides,
  };
}

async function minutes() {
  const rows = await database.db
    .selectFrom('usage_minutes')
    .selectAll()
    .orderBy('minute')
    .orderBy('key_id')
    .orderBy('code')
    .orderBy('source_ip')
    .orderBy('system')
    .execute();
  return rows.map((r) => ({ ...r, minute: r.minute.toISOString(), count: Number(r.count) }));
}

async function total(): Promise<number> {
  return (await minutes()).reduce((sum, row) => sum + row.count, 0);
}

beforeAll(async () => {
  database = await createTestDatabase();
  redis = createRedis(TEST_REDIS_URL);
});
beforeEach(async () => {
  // Each test its own Redis keys and empty tables: nothing depends on the order tests run in.
  prefix = testRedisPrefix();
  counters = new UsageCounters(redis, prefix);
  errors.length = 0;
  for (const table of ['usage_minutes', 'usage_batches', 'key_usage', 'account_usage'] as const) {
    await database.db.deleteFrom(table).execute();
  }
});
afterAll(async () => {
  await closeRedis(redis);
  await database.drop();
});

it('adds two instances’ buffers up in Redis and writes the sums to PostgreSQL', async () => {
  const one = buffer();
  const two = buffer();
  for (let i = 0; i < 5; i++) one.record(verification());
  for (let i = 0; i < 3; i++) two.record(verification());
  two.record(verification({ code: 'INSUFFICIENT_SCOPE' }));
  two.record(
    verification({ keyId: null, serviceAccountId: null, code: 'UNKNOWN', sourceIp: null, system: null }),
  );
  await Promise.all([one.flush(), two.flush()]);
  expect(one.held + two.held).toBe(0);

  const result = await flushUsage(database.db, counters);
  expect(result).toEqual({ applied: 1, skipped: 0, cells: 3, keys: 1 });
  expect(await minutes()).toEqual([
    expect.objectContaining({
      key_id: '',
      service_account_id: '',
      code: 'UNKNOWN',
      source_ip: '',
      system: '',
      count: 1,
    }),
    expect.objectContaining({
      tenant_id: 'acme',
      minute: '2026-03-01T09:00:00.000Z',
      key_id: 'key_a',
      service_account_id: 'sa_1',
      code: 'ALLOWED',
      source_ip: '10.0.0.1',
      system: 'zendesk',
      count: 8,
    }),
    expect.objectContaining({ key_id: 'key_a', code: 'INSUFFICIENT_SCOPE', count: 1 }),
  ]);
  // Nothing left in Redis: a second flush finds nothing.
  expect(await flushUsage(database.db, counters)).toEqual({ applied: 0, skipped: 0, cells: 0, keys: 0 });
  expect(await redis.keys(`${prefix}:*`)).toEqual([]);
});

it('adds later flushes onto the same minute rather than replacing it', async () => {
  const b = buffer();
  b.record(verification());
  await b.flush();
  await flushUsage(database.db, counters);
  b.record(verification({ at: new Date('2026-03-01T09:00:45Z') }));
  b.record(verification({ at: new Date('2026-03-01T09:00:50Z') }));
  await b.flush();
  await flushUsage(database.db, counters);
  expect((await minutes()).map((r) => r.count)).toEqual([3]);
});

it('never counts twice: a flush that died after its commit is finished by the next one', async () => {
  const b = buffer();
  for (let i = 0; i < 4; i++) b.record(verification());
  await b.flush();
  // The first flush commits, then dies before it drops the batch from Redis.
  const dying = Object.create(counters) as UsageCounters;
  dying.drop = () => Promise.reject(new Error('killed after commit'));
  await expect(flushUsage(database.db, dying)).rejects.toThrow('killed after commit');
  expect(await total()).toBe(4);
  expect((await counters.pending()).length).toBe(1);

  // The retry finds the batch already written and only clears it.
  expect(await flushUsage(database.db, counters)).toEqual(
    expect.objectContaining({ applied: 0, skipped: 1 }),
  );
  expect(await total()).toBe(4);
  expect(await counters.pending()).toEqual([]);
});

it('finishes a batch a flush claimed but never wrote (it died before its commit)', async () => {
  const b = buffer();
  for (let i = 0; i < 3; i++) b.record(verification());
  await b.flush();
  await counters.claim('abandoned');
  expect(await total()).toBe(0);
  // Counted meanwhile, into the live counters.
  b.record(verification());
  await b.flush();
  expect(await flushUsage(database.db, counters)).toEqual(
    expect.objectContaining({ applied: 2, skipped: 0 }),
  );
  expect(await total()).toBe(4);
});

it('counts exactly once when five workers flush at the same moment, while instances keep counting', async () => {
  const b = buffer();
  let recorded = 0;
  const flushes: Promise<unknown>[] = [];
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 20; i++, recorded++) b.record(verification({ sourceIp: `10.0.0.${i % 4}` }));
    await b.flush();
    for (let w = 0; w < 5; w++) flushes.push(flushUsage(database.db, counters));
  }
  await Promise.all(flushes);
  await flushUsage(database.db, counters);
  expect(await total()).toBe(recorded);
  expect(await counters.pending()).toEqual([]);
});

it('writes a key’s last use, and an account’s first and last seen, at most once a minute', async () => {
  const b = buffer();
  const at = (time: string) => new Date(`2026-03-01T${time}Z`);
  const flushAt = async (time: string) => {
    b.record(verification({ at: at(time) }));
    await b.flush();
    await flushUsage(database.db, counters);
  };
  const state = async () => ({
    key: (
      await database.db.selectFrom('key_usage').selectAll().executeTakeFirstOrThrow()
    ).last_used_at.toISOString(),
    account: await database.db
      .selectFrom('account_usage')
      .select(['first_seen_at', 'last_seen_at'])
      .executeTakeFirstOrThrow()
      .then((r) => [r.first_seen_at.toISOString(), r.last_seen_at.toISOString()]),
  });

  await flushAt('09:00:10');
  expect(await state()).toEqual({
    key: '2026-03-01T09:00:10.000Z',
    account: ['2026-03-01T09:00:10.000Z', '2026-03-01T09:00:10.000Z'],
  });
  // 40 s later: under a minute since the stored use, so the row is not written.
  await flushAt('09:00:50');
  expect((await state()).key).toBe('2026-03-01T09:00:10.000Z');
  // A minute after the stored use: written.
  await flushAt('09:01:10');
  expect(await state()).toEqual({
    key: '2026-03-01T09:01:10.000Z',
    account: ['2026-03-01T09:00:10.000Z', '2026-03-01T09:01:10.000Z'],
  });
  // A refused verification is not a use.
  b.record(verification({ at: at('09:30:00'), code: 'REVOKED' }));
  await b.flush();
  await flushUsage(database.db, counters);
  expect((await state()).key).toBe('2026-03-01T09:01:10.000Z');
});

it('keeps counts in memory while Redis is away and hands them over when it is back', async () => {
  const flaky = createRedis(TEST_REDIS_URL);
  try {
    await flaky.ping();
    const b = buffer(flaky);
    b.record(verification());
    flaky.disconnect();
    b.record(verification());
    await b.flush();
    expect(b.held).toBeGreaterThan(0);
    expect(errors).toEqual(['could not hand usage counts to Redis; keeping them for the next try']);
    b.record(verification());
    await flaky.connect();
    await b.flush();
    expect(b.held).toBe(0);
    await flushUsage(database.db, counters);
    expect(await total()).toBe(3);
  } finally {
    flaky.disconnect();
  }
});

it('holds a bounded number of cells and reports what it could not count', async () => {
  const b = buffer(redis, 3);
  for (let i = 0; i < 10; i++) b.record(verification({ sourceIp: `10.0.0.${i}` }));
  expect(b.held).toBe(3);
  await b.flush();
  expect(errors).toEqual(['usage buffer full: verifications not counted']);
});

it('hands what it holds to Redis on stop, and its timer does so within a second', async () => {
  const b = buffer();
  b.start();
  b.record(verification());
  const deadline = Date.now() + 1_500;
  while (b.held > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(b.held).toBe(0);
  b.record(verification());
  await b.stop();
  expect(b.held).toBe(0);
  await flushUsage(database.db, counters);
  expect(await total()).toBe(2);
});

it('reads buckets with zeros where nothing happened and denials by code', async () => {
  const b = buffer();
  const at = (time: string) => new Date(`2026-03-01T${time}Z`);
  b.record(verification({ at: at('09:00:10') }));
  b.record(verification({ at: at('09:02:10') }));
  b.record(verification({ at: at('09:02:20'), code: 'RATE_LIMITED' }));
  b.record(verification({ at: at('09:02:30'), code: 'RATE_LIMITED' }));
  b.record(verification({ at: at('09:02:40'), code: 'IP_NOT_ALLOWED' }));
  b.record(verification({ at: at('10:15:00'), keyId: 'key_b' }));
  b.record(verification({ at: at('09:00:00'), tenantId: 'other' }));
  await b.flush();
  await flushUsage(database.db, counters);
  const reader = new UsageReader(database.db);
  const query = { tenantId: 'acme', from: at('09:00:00'), to: at('09:03:00') };
  expect(await reader.buckets({ ...query, granularity: 'minute' })).toEqual([
    { bucket: '2026-03-01T09:00:00.000Z', allowed: 1, denied: 0, deniedByCode: {} },
    { bucket: '2026-03-01T09:01:00.000Z', allowed: 0, denied: 0, deniedByCode: {} },
    {
      bucket: '2026-03-01T09:02:00.000Z',
      allowed: 1,
      denied: 3,
      deniedByCode: { RATE_LIMITED: 2, IP_NOT_ALLOWED: 1 },
    },
  ]);
  const day = { tenantId: 'acme', from: at('00:00:00'), to: at('23:59:59') };
  expect(await reader.buckets({ ...day, granularity: 'day' })).toEqual([
    {
      bucket: '2026-03-01T00:00:00.000Z',
      allowed: 3,
      denied: 3,
      deniedByCode: { RATE_LIMITED: 2, IP_NOT_ALLOWED: 1 },
    },
  ]);
  expect(await reader.buckets({ ...day, granularity: 'day', keyId: 'key_b' })).toEqual([
    { bucket: '2026-03-01T00:00:00.000Z', allowed: 1, denied: 0, deniedByCode: {} },
  ]);
  expect(
    (await reader.buckets({ ...day, granularity: 'hour', serviceAccountId: 'sa_1' })).filter(
      (b) => b.allowed || b.denied,
    ),
  ).toEqual([
    {
      bucket: '2026-03-01T09:00:00.000Z',
      allowed: 2,
      denied: 3,
      deniedByCode: { RATE_LIMITED: 2, IP_NOT_ALLOWED: 1 },
    },
    { bucket: '2026-03-01T10:00:00.000Z', allowed: 1, denied: 0, deniedByCode: {} },
  ]);
});
