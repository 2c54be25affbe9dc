import { PassThrough } from 'node:stream';
import type Redis from 'ioredis';
import request from 'supertest';
import { closeRedis, createRedis } from '@keyward/redis';
import { UsageBuffer, UsageCounters, flushUsage } from '@keyward/usage';
import { createApi } from '../app';
import {
  bearer,
  createTenant,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * API.md "Usage": every verification counted, flushed to PostgreSQL, read back in buckets; and
 * the usage columns of keys and accounts. The flush is the worker's function, run here directly
 * so the test decides when it happens.
 */
let api: TestApi;
let redis: Redis;

beforeAll(async () => {
  api = await startTestApi();
  redis = createRedis(api.config.redisUrl);
});
afterAll(async () => {
  await closeRedis(redis);
  await api.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

type Headers = Record<string, string>;

/** The buffer's hand-off to Redis, then the worker's flush to PostgreSQL. */
async function flush(): Promise<void> {
  await api.app.get(UsageBuffer).flush();
  await flushUsage(api.database.db, new UsageCounters(redis, api.config.redisPrefix));
}

let seq = 0;
async function setup() {
  seq += 1;
  const t = await createTenant(api, `usage-${seq}`);
  const admin = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: `acct-${seq}`,
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['tickets:read', 'summaries:draft'],
    })
    .expect(201);
  const issue = async (name: string, scopes = ['tickets:read']) =>
    (
      await api.http
        .post(`/v1/service-accounts/${account.body.id}/keys`)
        .set(admin)
        .send({ name, scopes })
        .expect(201)
    ).body as { id: string; secret: string };
  return {
    tenant: t,
    admin,
    verifier: bearer(await t.token('verifier')),
    auditor: bearer(await t.token('auditor')),
    accountId: account.body.id as string,
    issue,
  };
}

function verify(auth: Headers, body: Record<string, unknown>) {
  return api.http.post('/v1/verify').set(auth).send(body).expect(200);
}

function usage(auth: Headers, query: Record<string, string>) {
  return api.http.get('/v1/usage').set(auth).query(query);
}

const HOUR = { from: '2026-03-01T09:00:00Z', to: '2026-03-01T10:00:00Z' };

it('counts allowed and refused verifications per key and account, denials by code, per minute/hour/day', async () => {
  const s = await setup();
  const a = await s.issue('a');
  const b = await s.issue('b');
  const source = { ip: '10.20.1.7', system: 'zendesk' };
  for (let i = 0; i < 3; i++) await verify(s.verifier, { key: a.secret, scope: 'tickets:read', source });
  await verify(s.verifier, { key: a.secret, scope: 'summaries:draft', source });
  api.clock.advance(60_000);
  await verify(s.verifier, { key: b.secret, scope: 'tickets:read' });
  await verify(s.verifier, { key: b.secret, environment: 'staging' });
  await verify(s.verifier, { key: `${a.secret.slice(0, -1)}${a.secret.endsWith('x') ? 'y' : 'x'}` }); // checksum broken: MALFORMED
  await flush();

  const minute = await usage(s.auditor, { ...HOUR, granularity: 'minute', keyId: a.id }).expect(200);
  expect(minute.body.items).toHaveLength(60);
  expect(minute.body.items[0]).toEqual({
    bucket: '2026-03-01T09:00:00.000Z',
    allowed: 3,
    denied: 1,
    deniedByCode: { INSUFFICIENT_SCOPE: 1 },
  });
  expect(
    minute.body.items.slice(1).every((b: { allowed: number; denied: number }) => !b.allowed && !b.denied),
  ).toBe(true);

  const account = await usage(s.auditor, {
    ...HOUR,
    granularity: 'hour',
    serviceAccountId: s.accountId,
  }).expect(200);
  expect(account.body).toEqual({
    items: [
      {
        bucket: '2026-03-01T09:00:00.000Z',
        allowed: 4,
        denied: 2,
        deniedByCode: { INSUFFICIENT_SCOPE: 1, ENVIRONMENT_MISMATCH: 1 },
      },
    ],
  });

  // The whole tenant also shows the key nobody could name (MALFORMED has no key).
  const tenant = await usage(s.auditor, {
    from: '2026-03-01T00:00:00Z',
    to: '2026-03-02T00:00:00Z',
    granularity: 'day',
  }).expect(200);
  expect(tenant.body.items).toEqual([
    {
      bucket: '2026-03-01T00:00:00.000Z',
      allowed: 4,
      denied: 3,
      deniedByCode: { INSUFFICIENT_SCOPE: 1, ENVIRONMENT_MISMATCH: 1, MALFORMED: 1 },
    },
  ]);

  // Source ip and system are kept with the counts.
  const rows = await api.database.db
    .selectFrom('usage_minutes')
    .select(['key_id', 'service_account_id', 'code', 'source_ip', 'system', 'count'])
    .where('tenant_id', '=', s.tenant.tenantId)
    .where('key_id', '=', a.id)
    .execute();
  expect(rows).toEqual(
    expect.arrayContaining([
      {
        key_id: a.id,
        service_account_id: s.accountId,
        code: 'ALLOWED',
        source_ip: '10.20.1.7',
        system: 'zendesk',
        count: '3',
      },
    ]),
  );
  api.clock.advance(-60_000);
});

it('keeps lastUsedAt on keys and firstSeenAt/lastSeenAt on accounts, from allowed verifications only', async () => {
  const s = await setup();
  const a = await s.issue('a');
  const unused = await s.issue('unused');
  const before = await api.http.get(`/v1/keys/${a.id}`).set(s.admin).expect(200);
  expect(before.body.lastUsedAt).toBeNull();

  const first = api.clock.now().toISOString();
  await verify(s.verifier, { key: a.secret });
  await flush();
  api.clock.advance(5 * 60_000);
  const later = api.clock.now().toISOString();
  await verify(s.verifier, { key: a.secret });
  await verify(s.verifier, { key: unused.secret, scope: 'nope:read' }); // refused: not a use
  await flush();

  expect((await api.http.get(`/v1/keys/${a.id}`).set(s.admin).expect(200)).body.lastUsedAt).toBe(later);
  expect((await api.http.get(`/v1/keys/${unused.id}`).set(s.admin).expect(200)).body.lastUsedAt).toBeNull();
  const account = await api.http.get(`/v1/service-accounts/${s.accountId}`).set(s.admin).expect(200);
  expect(account.body).toEqual(expect.objectContaining({ firstSeenAt: first, lastSeenAt: later }));
  const listed = await api.http.get(`/v1/service-accounts/${s.accountId}/keys`).set(s.admin).expect(200);
  expect(listed.body.items.find((k: { id: string }) => k.id === a.id).lastUsedAt).toBe(later);
  api.clock.advance(-5 * 60_000);
});

it("counts a key used as a caller of Keyward's own API as used", async () => {
  seq += 1;
  const t = await createTenant(api, `usage-caller-${seq}`);
  const admin = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: 'automation',
      environment: 'staging',
      businessOwner: 'b',
      technicalOwner: 't',
      allowedScopes: ['keyward:read'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(admin)
    .send({ name: 'reader', scopes: ['keyward:read'] })
    .expect(201);
  await api.http.get('/v1/service-accounts').set(bearer(key.body.secret)).expect(200);
  await flush();
  const read = await usage(admin, { ...HOUR, keyId: key.body.id }).expect(200);
  expect(read.body.items).toEqual([
    { bucket: '2026-03-01T09:00:00.000Z', allowed: 1, denied: 0, deniedByCode: {} },
  ]);
  const row = await api.database.db
    .selectFrom('usage_minutes')
    .select(['system'])
    .where('key_id', '=', key.body.id)
    .executeTakeFirstOrThrow();
  expect(row.system).toBe('keyward-api');
});

it('defaults to 24 hourly buckets ending with the one in progress', async () => {
  const s = await setup();
  const res = await usage(s.auditor, {}).expect(200);
  expect(res.body.items).toHaveLength(24);
  expect(res.body.items[0].bucket).toBe('2026-02-28T10:00:00.000Z');
  expect(res.body.items.at(-1).bucket).toBe('2026-03-01T09:00:00.000Z');
  const minutes = await usage(s.auditor, { granularity: 'minute' }).expect(200);
  expect(minutes.body.items).toHaveLength(60);
  expect(minutes.body.items.at(-1).bucket).toBe('2026-03-01T09:00:00.000Z');
  const days = await usage(s.auditor, { granularity: 'day', from: '2026-02-27T12:00:00Z' }).expect(200);
  expect(days.body.items.map((b: { bucket: string }) => b.bucket)).toEqual([
    '2026-02-27T00:00:00.000Z',
    '2026-02-28T00:00:00.000Z',
    '2026-03-01T00:00:00.000Z',
  ]);
});

it('sees only its own tenant', async () => {
  const s = await setup();
  const other = await setup();
  const a = await other.issue('a');
  await verify(other.verifier, { key: a.secret });
  await verify(s.verifier, { key: a.secret }); // another tenant's key: UNKNOWN here
  await flush();
  const mine = await usage(s.auditor, HOUR).expect(200);
  expect(mine.body.items).toEqual([
    { bucket: '2026-03-01T09:00:00.000Z', allowed: 0, denied: 1, deniedByCode: { UNKNOWN: 1 } },
  ]);
  expectProblem(await usage(s.auditor, { keyId: a.id }), 404, 'NOT_FOUND');
  expectProblem(await usage(s.auditor, { serviceAccountId: other.accountId }), 404, 'NOT_FOUND');
});

describe('bad requests change nothing and say why', () => {
  it.each<[string, Record<string, string>]>([
    ['an unknown granularity', { granularity: 'week' }],
    ['a from that is no time', { from: 'yesterday' }],
    ['a to that is no time', { to: '2026-13-01T00:00:00Z' }],
    ['from after to', { from: '2026-03-01T10:00:00Z', to: '2026-03-01T09:00:00Z' }],
    ['from equal to to', { from: '2026-03-01T09:00:00Z', to: '2026-03-01T09:00:00Z' }],
    [
      'more than 1440 buckets',
      { from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z', granularity: 'minute' },
    ],
    ['an unknown parameter', { limit: '5' }],
  ])('400 for %s', async (_name, query) => {
    const s = await setup();
    expectProblem(await usage(s.auditor, query), 400, 'VALIDATION_FAILED');
  });

  it('404 for an unknown account or key, or a key of another account', async () => {
    const s = await setup();
    const a = await s.issue('a');
    expectProblem(await usage(s.auditor, { serviceAccountId: 'sa_00000000000000000000' }), 404, 'NOT_FOUND');
    expectProblem(await usage(s.auditor, { keyId: 'key_00000000000000000000' }), 404, 'NOT_FOUND');
    expectProblem(await usage(s.auditor, { keyId: 'nonsense' }), 404, 'NOT_FOUND');
    const second = await api.http
      .post('/v1/service-accounts')
      .set(s.admin)
      .send({
        name: 'second',
        environment: 'staging',
        businessOwner: 'b',
        technicalOwner: 't',
        allowedScopes: ['x:read'],
      })
      .expect(201);
    expectProblem(
      await usage(s.auditor, { serviceAccountId: second.body.id, keyId: a.id }),
      404,
      'NOT_FOUND',
    );
    await usage(s.auditor, { serviceAccountId: s.accountId, keyId: a.id }).expect(200);
  });

  it('401 without a credential, 403 for a role that may not read', async () => {
    const s = await setup();
    expectProblem(await api.http.get('/v1/usage'), 401, 'UNAUTHENTICATED');
    expectProblem(await usage(s.verifier, {}), 403, 'FORBIDDEN');
    await usage(s.admin, {}).expect(200);
    await usage(bearer(await s.tenant.token('approver')), {}).expect(200);
  });
});

it('a graceful stop hands every buffered verification to Redis; nothing is lost', async () => {
  const s = await setup();
  const a = await s.issue('a');
  const second = await createApi({ config: api.config, clock: api.clock, logStream: new PassThrough() });
  await second.init();
  const http = request(second.getHttpServer());
  for (let i = 0; i < 25; i++) {
    await http.post('/v1/verify').set(s.verifier).send({ key: a.secret }).expect(200);
  }
  // No flush yet: the counts are in the second instance's memory (its timer is a second away).
  await second.close();
  await flushUsage(api.database.db, new UsageCounters(redis, api.config.redisPrefix));
  const read = await usage(s.auditor, { ...HOUR, keyId: a.id }).expect(200);
  expect(read.body.items[0]).toEqual(expect.objectContaining({ allowed: 25 }));
});

it('answers 503 when PostgreSQL cannot be reached', async () => {
  const s = await setup();
  const broken = new URL(api.config.databaseUrl);
  broken.port = '1';
  const second = await createApi({
    config: { ...api.config, databaseUrl: broken.toString() },
    clock: api.clock,
    logStream: new PassThrough(),
  });
  await second.init();
  try {
    const res = await request(second.getHttpServer()).get('/v1/usage').set(s.auditor);
    expectProblem(res, 503, 'UNAVAILABLE');
  } finally {
    await second.close();
  }
});
