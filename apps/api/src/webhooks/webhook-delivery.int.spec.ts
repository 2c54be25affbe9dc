import pino from 'pino';
import { Queue } from 'bullmq';
import { JOB, QUEUES, WEBHOOK_ATTEMPTS } from '@keyward/jobs';
import { producerConnection } from '@keyward/redis';
import { verifySignature } from '@keyward/webhooks';
import {
  bearer,
  createTenant,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';
import { startReceiver, type Receiver, type ReceivedRequest } from '../../../../test/support/receiver';
import { startWorker, type KeywardWorker } from '../../../worker/src/worker';

/**
 * Deliveries end to end: the API records and queues them after a commit, a real worker POSTs them
 * to a real receiver on 127.0.0.1 (allowed by KEYWARD_WEBHOOK_ALLOW_PRIVATE), signed, with retries.
 * The retry delay is 20 ms, so eight attempts take about 2.5 s.
 */

let api: TestApi;
let worker: KeywardWorker;
let receiver: Receiver;
let base: string;
let received: ReceivedRequest[];
/** Status codes each path answers, in turn; the last one repeats. */
let answers: Map<string, number[]>;

beforeAll(async () => {
  api = await startTestApi({ KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true', KEYWARD_WEBHOOK_RETRY_DELAY_MS: '20' });
  // The worker decides on the test's clock (the expiry sweep), and runs its sweep only when asked.
  worker = await startWorker({ ...api.config, sweepCron: '0 0 1 1 *' }, pino({ level: 'silent' }), {
    clock: api.clock,
  });
  receiver = await startReceiver();
  ({ base, received, answers } = receiver);
});
afterAll(async () => {
  await worker?.close();
  await receiver?.close();
  await api?.close();
});
afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
});

/** A tenant with a webhook on key.revoked at `path`, and a key that is then revoked. */
async function revokedKeyDelivery(tenantId: string, path: string) {
  const t = await createTenant(api, tenantId);
  const auth = bearer(t.admin);
  const hook = await api.http
    .post('/v1/webhooks')
    .set(auth)
    .send({ url: `${base}${path}`, events: ['key.revoked'] })
    .expect(201);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: `${tenantId}-bot`,
      environment: 'development',
      businessOwner: 'o',
      technicalOwner: 'p',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(auth)
    .send({ name: 'k', scopes: ['a:read'] })
    .expect(201);
  await api.http.post(`/v1/keys/${key.body.id}/revoke`).set(auth).send({}).expect(200);
  return {
    auth,
    webhookId: hook.body.id as string,
    secret: hook.body.signingSecret as string,
    keyId: key.body.id as string,
  };
}

/** The webhook's deliveries once none is pending any more. */
async function settledDeliveries(auth: { Authorization: string }, webhookId: string) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await api.http.get(`/v1/webhooks/${webhookId}/deliveries`).set(auth).expect(200);
    const items = res.body.items as { status: string }[];
    if (items.length > 0 && items.every((d) => d.status !== 'pending')) return res.body.items;
    if (Date.now() > deadline) throw new Error(`deliveries still pending: ${JSON.stringify(items)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('delivers key.revoked, signed with the secret shown at registration, and records it succeeded', async () => {
  const { auth, webhookId, secret, keyId } = await revokedKeyDelivery('whd-ok', '/ok');
  const [delivery] = await settledDeliveries(auth, webhookId);
  expect(delivery).toEqual({
    id: expect.stringMatching(/^whd_/),
    event: 'key.revoked',
    status: 'succeeded',
    attempts: 1,
    lastStatusCode: 200,
    lastError: null,
    createdAt: expect.any(String),
    deliveredAt: expect.any(String),
  });

  // Only key.revoked was subscribed: the issue and the account's creation were not delivered.
  const got = received.filter((r) => r.path === '/ok');
  expect(got).toHaveLength(1);
  const [request] = got;
  expect(request!.headers['content-type']).toBe('application/json');
  const now = Math.floor(Date.now() / 1000);
  expect(
    verifySignature(secret, request!.body, request!.headers['keyward-signature'] as string, { now }),
  ).toBe(true);
  expect(
    verifySignature('whsec_wrong', request!.body, request!.headers['keyward-signature'] as string, { now }),
  ).toBe(false);
  expect(JSON.parse(request!.body)).toEqual({
    id: delivery.id,
    type: 'key.revoked',
    occurredAt: '2026-03-01T09:00:00.000Z',
    tenantId: 'whd-ok',
    data: { cause: 'manual', emergency: false, streamId: keyId },
  });
  expect(request!.body).not.toContain(secret);
  expect(api.logs()).not.toContain(secret);
});

it('retries a receiver that answers 500 twice, then succeeds on the third attempt with the same body', async () => {
  answers.set('/flaky', [500, 500, 200]);
  const { auth, webhookId, secret } = await revokedKeyDelivery('whd-flaky', '/flaky');
  const [delivery] = await settledDeliveries(auth, webhookId);
  expect(delivery).toMatchObject({ status: 'succeeded', attempts: 3, lastStatusCode: 200, lastError: null });
  const got = received.filter((r) => r.path === '/flaky');
  expect(got).toHaveLength(3);
  expect(new Set(got.map((r) => r.body)).size).toBe(1);
  const now = Math.floor(Date.now() / 1000);
  for (const r of got) {
    expect(verifySignature(secret, r.body, r.headers['keyward-signature'] as string, { now })).toBe(true);
  }
});

it('marks a delivery failed after every attempt failed, keeping the last status and error', async () => {
  answers.set('/down', [503]);
  const { auth, webhookId } = await revokedKeyDelivery('whd-down', '/down');
  const [delivery] = await settledDeliveries(auth, webhookId);
  expect(delivery).toMatchObject({
    status: 'failed',
    attempts: WEBHOOK_ATTEMPTS,
    lastStatusCode: 503,
    lastError: 'the receiver answered 503',
    deliveredAt: null,
  });
  expect(received.filter((r) => r.path === '/down')).toHaveLength(WEBHOOK_ATTEMPTS);
});

it("delivers key.expired for a key the worker's expiry sweep expired (the worker's appends dispatch too)", async () => {
  const t = await createTenant(api, 'whd-expired');
  const auth = bearer(t.admin);
  const hook = await api.http
    .post('/v1/webhooks')
    .set(auth)
    .send({ url: `${base}/expired`, events: ['key.expired'] })
    .expect(201);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'whd-expired-bot',
      environment: 'development',
      businessOwner: 'o',
      technicalOwner: 'p',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(auth)
    .send({ name: 'k', scopes: ['a:read'], expiresInDays: 1 })
    .expect(201);
  api.clock.advance(2 * 24 * 3600 * 1000);
  const sweeps = new Queue(QUEUES.sweeps, {
    connection: producerConnection(api.config.redisUrl),
    prefix: api.config.redisPrefix,
  });
  try {
    await sweeps.add(JOB.expireKeys, {});
  } finally {
    await sweeps.close();
  }
  const [delivery] = await settledDeliveries(auth, hook.body.id as string);
  expect(delivery).toEqual(expect.objectContaining({ event: 'key.expired', status: 'succeeded' }));
  const got = received.filter((r) => r.path === '/expired');
  expect(got).toHaveLength(1);
  expect(JSON.parse(got[0]!.body)).toEqual(
    expect.objectContaining({
      type: 'key.expired',
      tenantId: 'whd-expired',
      data: { streamId: key.body.id },
    }),
  );
});
