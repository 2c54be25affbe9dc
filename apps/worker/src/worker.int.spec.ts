import { Job, QueueEvents } from 'bullmq';
import pino from 'pino';
import { QUEUES } from '@keyward/jobs';
import { closeRedis, createRedis, workerConnection } from '@keyward/redis';
import { sql } from 'kysely';
import { BOOTSTRAP_TOKEN, bearer, createTenant, startTestApi, type TestApi } from '../../../test/support/api';
import { checkEvictionPolicy, startWorker, type KeywardWorker } from './worker';

/** The admin rebuild endpoint enqueues; the worker rebuilds the read model from the events. */
let api: TestApi;
let worker: KeywardWorker;
let events: QueueEvents;
let eventsConnection: ReturnType<typeof workerConnection>;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  api = await startTestApi();
  worker = await startWorker({ ...api.config, usageFlushCron: '* * * * * *' }, logger);
  // QueueEvents blocks on a copy of the connection it is given; the original is ours to close.
  eventsConnection = workerConnection(api.config.redisUrl);
  events = new QueueEvents(QUEUES.projections, {
    connection: eventsConnection,
    prefix: api.config.redisPrefix,
  });
  await events.waitUntilReady();
});
afterAll(async () => {
  await events.close();
  await closeRedis(eventsConnection);
  await worker.close();
  await api.close();
});

it('rebuilds the service-accounts read model from the events and repairs a damaged row', async () => {
  const t = await createTenant(api, 'wk-acme');
  const created = await api.http
    .post('/v1/service-accounts')
    .set(bearer(t.admin))
    .send({
      name: 'rebuild-me',
      environment: 'development',
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  await api.http
    .post(`/v1/service-accounts/${created.body.id}/scopes`)
    .set(bearer(t.admin))
    .send({ scopes: ['b:write'] })
    .expect(200);
  const before = await api.database.db.selectFrom('service_accounts').selectAll().execute();

  await api.database.db
    .updateTable('service_accounts')
    .set({ name: 'damaged', allowed_scopes: [] })
    .execute();

  const res = await api.http
    .post('/v1/admin/projections/service-accounts/rebuild')
    .set(bearer(t.admin))
    .expect(202);
  expect(res.body).toEqual({ jobId: expect.any(String), projection: 'service-accounts' });
  const job = await Job.fromId(worker.workers[0], res.body.jobId);
  const result = await job!.waitUntilFinished(events, 15_000);
  expect(result).toEqual({ projection: 'service-accounts', tenantId: 'wk-acme', events: expect.any(Number) });

  const after = await api.database.db.selectFrom('service_accounts').selectAll().execute();
  expect(after).toEqual(before);
});

it("an admin's rebuild repairs its own tenant's rows only; the bootstrap token's every tenant's", async () => {
  const tenants = [await createTenant(api, 'wk-own-a'), await createTenant(api, 'wk-own-b')];
  for (const t of tenants) {
    await api.http
      .post('/v1/service-accounts')
      .set(bearer(t.admin))
      .send({ name: 'own-rows', environment: 'staging', businessOwner: 'o', technicalOwner: 't' })
      .expect(201);
  }
  const ids = tenants.map((t) => t.tenantId);
  const rowsOf = (tenantId: string) =>
    api.database.db.selectFrom('service_accounts').selectAll().where('tenant_id', '=', tenantId).execute();
  const before = await Promise.all(ids.map(rowsOf));
  await api.database.db
    .updateTable('service_accounts')
    .set({ name: 'damaged' })
    .where('tenant_id', 'in', ids)
    .execute();
  // Every row outside tenant a: its place, its row version and its text.
  const outsideA = async () =>
    (
      await sql<{ row: string }>`
        select concat_ws(' ', ctid, xmin, s) as row from service_accounts s
        where tenant_id <> ${ids[0]} order by 1`.execute(api.database.db)
    ).rows.map((r) => r.row);
  const outsideBefore = await outsideA();

  const run = async (auth: Record<string, string>) => {
    const res = await api.http.post('/v1/admin/projections/service-accounts/rebuild').set(auth).expect(202);
    const job = await Job.fromId(worker.workers[0], res.body.jobId);
    return job!.waitUntilFinished(events, 15_000);
  };
  expect(await run(bearer(tenants[0].admin))).toEqual(
    expect.objectContaining({ projection: 'service-accounts', tenantId: ids[0] }),
  );
  expect(await rowsOf(ids[0])).toEqual(before[0]);
  expect(await outsideA()).toEqual(outsideBefore);
  expect((await rowsOf(ids[1])).map((r) => r.name)).toEqual(['damaged']);

  expect(await run(bearer(BOOTSTRAP_TOKEN))).toEqual(
    expect.objectContaining({ projection: 'service-accounts', tenantId: null }),
  );
  expect(await rowsOf(ids[1])).toEqual(before[1]);
});

it('answers 404 for an unknown projection and 403 for a role that may not manage', async () => {
  const t = await createTenant(api, 'wk-roles');
  const unknown = await api.http.post('/v1/admin/projections/nope/rebuild').set(bearer(t.admin)).expect(404);
  expect(unknown.body.detail).toContain('service-accounts');
  await api.http
    .post('/v1/admin/projections/tenants/rebuild')
    .set(bearer(await t.token('auditor')))
    .expect(403);
});

it('flushes usage from Redis to PostgreSQL on its own schedule', async () => {
  const t = await createTenant(api, 'wk-usage');
  const admin = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: 'counted',
      environment: 'staging',
      businessOwner: 'b',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(admin)
    .send({ name: 'k', scopes: ['a:read'] })
    .expect(201);
  const verifier = bearer(await t.token('verifier'));
  for (let i = 0; i < 3; i++) {
    await api.http.post('/v1/verify').set(verifier).send({ key: key.body.secret }).expect(200);
  }
  // No flush by the test: the API's buffer hands off within a second, the scheduled job within
  // its interval (one second here).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const row = await api.database.db
      .selectFrom('usage_minutes')
      .select((eb) => eb.fn.sum<string>('count').as('count'))
      .where('key_id', '=', key.body.id)
      .executeTakeFirst();
    if (Number(row?.count ?? 0) === 3) break;
    if (Date.now() > deadline) throw new Error(`usage not flushed: ${row?.count}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const shown = await api.http.get(`/v1/keys/${key.body.id}`).set(admin).expect(200);
  expect(shown.body.lastUsedAt).toBe(api.clock.now().toISOString());
});

it('reads the Redis eviction policy it warns about', async () => {
  const redis = createRedis(api.config.redisUrl);
  try {
    const warnings: unknown[] = [];
    const spy = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
    const policy = await checkEvictionPolicy(redis, spy);
    expect(typeof policy).toBe('string');
    expect(warnings.length).toBe(policy === 'noeviction' ? 0 : 1);
  } finally {
    await closeRedis(redis);
  }
});
