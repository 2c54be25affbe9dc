import { Queue } from 'bullmq';
import pino from 'pino';
import { toRecordedEvent } from '@keyward/event-store';
import { JOB, QUEUES } from '@keyward/jobs';
import { producerConnection } from '@keyward/redis';
import { recordDeliveries, verifySignature } from '@keyward/webhooks';
import { bearer, createTenant, newServerErrors, startTestApi, type TestApi } from '../../../test/support/api';
import { startReceiver, type Receiver, type ReceivedRequest } from '../../../test/support/receiver';
import { waitFor } from '../../../test/support/wait';
import { startWorker, type KeywardWorker } from './worker';

/**
 * The worker's hygiene through its real queues, on the test's clock: a hygiene sweep hands a due
 * key to the rotations queue and the worker delivers the new secret; signals the worker raises
 * are webhook events; the usage evaluation raises behavioural signals; deliveries whose enqueue
 * was lost are queued again. Schedules are set never to fire: the test adds each run itself.
 */
let api: TestApi;
let worker: KeywardWorker;
let receiver: Receiver;
let base: string;
let received: ReceivedRequest[];
const queues: Queue[] = [];
const NEVER = '0 0 1 1 *';
const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  api = await startTestApi({
    KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true',
    KEYWARD_WEBHOOK_RETRY_DELAY_MS: '20',
    // A verify cache that would keep a key for a minute: only an invalidation explains a quick refusal.
    KEYWARD_KEY_CACHE_TTL_MS: '60000',
  });
  worker = await startWorker(
    { ...api.config, sweepCron: NEVER, abuseCron: NEVER, usageFlushCron: NEVER },
    pino({ level: 'silent' }),
    { clock: api.clock },
  );
  receiver = await startReceiver();
  ({ base, received } = receiver);
});
afterAll(async () => {
  await Promise.all(queues.map((q) => q.close()));
  await worker?.close();
  await receiver?.close();
  await api?.close();
});
afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
});

function queue(name: string): Queue {
  const q = new Queue(name, {
    connection: producerConnection(api.config.redisUrl),
    prefix: api.config.redisPrefix,
  });
  queues.push(q);
  return q;
}

const deliveredTo = (path: string) => received.filter((r) => r.path === path).map((r) => JSON.parse(r.body));

it('rotates a due key through the rotations queue, delivers its secret, and tells webhooks of it and of the signals raised', async () => {
  const t = await createTenant(api, 'wkh-acme');
  const auth = bearer(t.admin);
  const hook = await api.http
    .post('/v1/webhooks')
    .set(auth)
    .send({ url: `${base}/hooks`, events: ['key.rotated', 'signal.raised'] })
    .expect(201);
  const policy = { maxKeyAgeDays: 30, notifyBeforeDays: 7 };
  const auto = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'auto-rotated',
      environment: 'production',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
      rotationPolicy: { ...policy, autoRotate: true },
      secretDelivery: { url: `${base}/secrets` },
    })
    .expect(201);
  const manual = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'rotated-by-hand',
      environment: 'staging',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
      rotationPolicy: { ...policy, autoRotate: false },
    })
    .expect(201);
  const autoKey = await api.http
    .post(`/v1/service-accounts/${auto.body.id}/keys`)
    .set(auth)
    .send({ name: 'k', scopes: ['a:read'] })
    .expect(201);
  const manualKey = await api.http
    .post(`/v1/service-accounts/${manual.body.id}/keys`)
    .set(auth)
    .send({ name: 'k', scopes: ['a:read'] })
    .expect(201);

  api.clock.advance(23 * DAY);
  await queue(QUEUES.sweeps).add(JOB.sweepHygiene, {});

  const [secret] = await waitFor(
    'the new secret',
    async () => deliveredTo('/secrets').length > 0 && deliveredTo('/secrets'),
  );
  expect(secret).toMatchObject({
    type: 'key.rotated',
    replaces: autoKey.body.id,
    serviceAccountId: auto.body.id,
  });
  const delivery = received.find((r) => r.path === '/secrets')!;
  expect(
    verifySignature(
      auto.body.secretDelivery.signingSecret,
      delivery.body,
      String(delivery.headers['keyward-signature']),
      {
        now: Math.floor(Date.now() / 1000),
      },
    ),
  ).toBe(true);
  await waitFor('the old key in its grace', async () => {
    const old = await api.http.get(`/v1/keys/${autoKey.body.id}`).set(auth).expect(200);
    return old.body.status === 'rotating' && old.body.replacedBy === secret.keyId;
  });
  const verifier = bearer(await t.token('verifier'));
  const verdict = await api.http.post('/v1/verify').set(verifier).send({ key: secret.secret }).expect(200);
  expect(verdict.body).toMatchObject({ valid: true, keyId: secret.keyId });

  // Webhooks: the rotation (key.rotated), and the ROTATION_DUE raised for the other account.
  const hooks = await waitFor('both webhook events', async () => {
    const got = deliveredTo('/hooks');
    return got.some((e) => e.type === 'key.rotated') && got.some((e) => e.type === 'signal.raised') && got;
  });
  expect(hooks.find((e) => e.type === 'key.rotated')!.data).toMatchObject({ replacedBy: secret.keyId });
  expect(hooks.find((e) => e.type === 'signal.raised')!.data).toMatchObject({
    type: 'ROTATION_DUE',
    keyId: manualKey.body.id,
    severity: 'medium',
  });
  const hookDelivery = received.find((r) => r.path === '/hooks')!;
  expect(
    verifySignature(
      hook.body.signingSecret,
      hookDelivery.body,
      String(hookDelivery.headers['keyward-signature']),
      {
        now: Math.floor(Date.now() / 1000),
      },
    ),
  ).toBe(true);
  // The new secret went to the secretDelivery URL only, never into a webhook.
  for (const r of received.filter((x) => x.path === '/hooks')) expect(r.body).not.toContain(secret.secret);
});

it('evaluates flushed usage on its job and raises a behavioural signal', async () => {
  const t = await createTenant(api, 'wkh-usage');
  const auth = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'uses',
      environment: 'production',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(auth)
    .send({ name: 'k', scopes: ['a:read'] })
    .expect(201);
  await api.http.post(`/v1/keys/${key.body.id}/revoke`).set(auth).send({}).expect(200);
  // What the usage flush writes for a revoked key's use two minutes ago (settled: evaluated).
  const minute = new Date(Math.floor(api.clock.now().getTime() / 60_000) * 60_000 - 120_000);
  await api.database.db
    .insertInto('usage_minutes')
    .values({
      tenant_id: t.tenantId,
      minute,
      key_id: key.body.id,
      service_account_id: account.body.id,
      code: 'REVOKED',
      source_ip: '10.0.0.9',
      system: 'helpdesk',
      count: 3,
    })
    .execute();
  await queue(QUEUES.signals).add(JOB.evaluateUsage, {});
  const signals = await waitFor('REVOKED_KEY_USED', async () => {
    const res = await api.http.get(`/v1/signals?serviceAccountId=${account.body.id}`).set(auth).expect(200);
    return res.body.items.length > 0 && res.body.items;
  });
  expect(signals).toEqual([
    expect.objectContaining({
      type: 'REVOKED_KEY_USED',
      keyId: key.body.id,
      severity: 'high',
      status: 'open',
    }),
  ]);
});

it('queues again a delivery whose enqueue was lost (Redis away after the commit)', async () => {
  const t = await createTenant(api, 'wkh-requeue');
  const auth = bearer(t.admin);
  await api.http
    .post('/v1/webhooks')
    .set(auth)
    .send({ url: `${base}/lost`, events: ['account.created'] })
    .expect(201);
  const created = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({ name: 'lost-hook', environment: 'development', businessOwner: 'o', technicalOwner: 't' })
    .expect(201);
  await waitFor('the normal delivery', async () => deliveredTo('/lost').length === 1);
  // Make it pending again with no job: the state a lost enqueue leaves behind.
  await api.database.db.deleteFrom('webhook_deliveries').where('tenant_id', '=', t.tenantId).execute();
  const events = await api.database.db
    .selectFrom('events')
    .selectAll()
    .where('stream_id', '=', created.body.id)
    .execute();
  const ids = await recordDeliveries(api.database.db, events.map(toRecordedEvent));
  expect(ids).toHaveLength(1);
  const jobs = queue(QUEUES.webhooks);
  await (await jobs.getJob(ids[0]))?.remove();

  // Not yet: younger than a minute, it may still be on its way.
  await queue(QUEUES.sweeps).add(JOB.requeueDeliveries, {});
  await new Promise((r) => setTimeout(r, 500));
  expect(deliveredTo('/lost')).toHaveLength(1);

  api.clock.advance(61_000);
  await queue(QUEUES.sweeps).add(JOB.requeueDeliveries, {});
  await waitFor('the delivery queued again', async () => deliveredTo('/lost').length === 2);
  await waitFor('the delivery recorded as succeeded', async () => {
    const row = await api.database.db
      .selectFrom('webhook_deliveries')
      .select('status')
      .where('id', '=', ids[0])
      .executeTakeFirst();
    return row?.status === 'succeeded';
  });
});

it('a key the worker revokes as unused is refused by the API at once, not after its cache lifetime', async () => {
  const t = await createTenant(api, 'wkh-unused');
  const auth = bearer(t.admin);
  await api.http
    .patch('/v1/policy')
    .set(auth)
    .send({ unusedAfterDays: 1, revokeUnusedAfterDays: 2 })
    .expect(200);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'idle',
      environment: 'production',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(auth)
    .send({ name: 'k', scopes: ['a:read'] })
    .expect(201);
  const verifier = bearer(await t.token('verifier'));
  const verify = async () =>
    (await api.http.post('/v1/verify').set(verifier).send({ key: key.body.secret }).expect(200)).body;
  // Idle for two days (its use below is never flushed: the flush does not run here), then
  // verified once, so the API caches it for a minute by the test's clock.
  api.clock.advance(2 * DAY);
  expect(await verify()).toMatchObject({ valid: true });
  await queue(QUEUES.sweeps).add(JOB.sweepHygiene, {});
  await waitFor('the revocation', async () => {
    const row = await api.database.db
      .selectFrom('keys')
      .select('revoked_at')
      .where('id', '=', key.body.id)
      .executeTakeFirst();
    return row?.revoked_at != null;
  });
  const refusedWithin = Date.now();
  await waitFor('the refusal', async () => (await verify()).code === 'REVOKED', 1_000);
  expect(Date.now() - refusedWithin).toBeLessThan(1_000);
});

it('a rotation job that fails every attempt raises ROTATION_FAILED on its key', async () => {
  const t = await createTenant(api, 'wkh-failing');
  const auth = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'unreadable-secret',
      environment: 'staging',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
      rotationPolicy: { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: true },
      secretDelivery: { url: `${base}/never` },
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(auth)
    .send({ name: 'k', scopes: ['a:read'] })
    .expect(201);
  // A signing secret that no longer opens (the encryption key changed): every attempt throws.
  await api.database.db
    .updateTable('secret_delivery_secrets')
    .set({ ciphertext: 'not-a-ciphertext' })
    .where('service_account_id', '=', account.body.id)
    .execute();
  api.clock.advance(23 * DAY);
  await queue(QUEUES.rotations).add(
    JOB.rotateKey,
    { tenantId: t.tenantId, keyId: key.body.id, version: 1 },
    { attempts: 2, backoff: { type: 'fixed', delay: 10 } },
  );
  const signals = await waitFor('ROTATION_FAILED', async () => {
    const res = await api.http.get(`/v1/signals?serviceAccountId=${account.body.id}`).set(auth).expect(200);
    return res.body.items.length > 0 && res.body.items;
  });
  expect(signals).toEqual([
    expect.objectContaining({ type: 'ROTATION_FAILED', keyId: key.body.id, count: 1 }),
  ]);
  expect(signals[0].detail.error).toMatch(/^the rotation job failed: /);
  expect(deliveredTo('/never')).toEqual([]);
});
