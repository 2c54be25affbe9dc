import { sql } from 'kysely';
import { secretDeliverySigningSecret } from '@keyward/accounts';
import { EventStore, StreamVersionConflict } from '@keyward/event-store';
import { inlineProjections } from '@keyward/projections';
import { SecretBox, verifySignature } from '@keyward/webhooks';
import { bearer, createTenant, newServerErrors, startTestApi, type TestApi } from '../../../test/support/api';
import { startReceiver, type Receiver, type ReceivedRequest } from '../../../test/support/receiver';
import { STALE_ROTATION_MS } from './hygiene-rules';
import { rotateWithDelivery, rotationJobFailed, type SecretDeliverySettings } from './scheduled-rotation';

/**
 * A scheduled rotation with secret delivery, against the real database and a real HTTP receiver
 * on 127.0.0.1, on the test's clock: the grace of the old key starts only after a 2xx, a failed
 * delivery leaves the old key working and revokes the new one, a run cut off half-way is settled
 * by the next, and the secret rests nowhere.
 */
let api: TestApi;
let store: EventStore;
let receiver: Receiver;
let base: string;
let received: ReceivedRequest[];
let answers: Map<string, number[]>;
const DAY = 24 * 3600 * 1000;

/** The old key each path's delivery is for, to look it up while the delivery is in flight. */
const watching = new Map<string, string>();
type OldKeyRow = { grace_ends_at: Date | null; pending_replacement: string | null };
/** The old key as the read model had it while the receiver held each request. */
const oldKeyAtDelivery = new Map<ReceivedRequest, OldKeyRow | undefined>();
/** What happens elsewhere while a path's delivery is in flight (before it is answered). */
const meanwhile = new Map<string, () => Promise<void>>();

beforeAll(async () => {
  api = await startTestApi({ KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' });
  store = new EventStore(api.database.db, inlineProjections, api.clock);
  receiver = await startReceiver(async (request) => {
    const oldKeyId = watching.get(request.path);
    oldKeyAtDelivery.set(
      request,
      oldKeyId
        ? await api.database.db
            .selectFrom('keys')
            .select(['grace_ends_at', 'pending_replacement'])
            .where('id', '=', oldKeyId)
            .executeTakeFirst()
        : undefined,
    );
    await meanwhile.get(request.path)?.();
  });
  ({ base, received, answers } = receiver);
});
afterAll(async () => {
  await receiver?.close();
  await api?.close();
});
afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
});

function settings(overrides: Partial<SecretDeliverySettings> = {}): SecretDeliverySettings {
  const box = new SecretBox(api.config.encryptionKey);
  return {
    signingSecret: (tenantId, accountId) =>
      secretDeliverySigningSecret(api.database.db, box, tenantId, accountId),
    allowPrivate: true,
    timeoutMs: 2_000,
    attempts: 3,
    retryDelayMs: 1,
    sleep: async () => undefined,
    ...overrides,
  };
}

let seq = 0;
/** A tenant with an auto-rotating account delivering to `path`, and one key now due. */
async function dueKey(path: string, policy = { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: true }) {
  seq += 1;
  const t = await createTenant(api, `rot-${seq}`);
  const auth = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: `digest-${seq}`,
      environment: 'production',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['tickets:read', 'summaries:draft'],
      rotationPolicy: policy,
      secretDelivery: { url: `${base}${path}` },
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(auth)
    .send({ name: 'worker-1', scopes: ['tickets:read', 'summaries:draft'], expiresInDays: 90 })
    .expect(201);
  watching.set(path, key.body.id);
  api.clock.advance(23 * DAY);
  return {
    t,
    auth,
    verifier: bearer(await t.token('verifier')),
    accountId: account.body.id as string,
    signingSecret: account.body.secretDelivery.signingSecret as string,
    key: key.body as { id: string; secret: string; prefix: string; version: number },
    job: { tenantId: t.tenantId, keyId: key.body.id as string, version: 1 },
  };
}

const rotate = (job: { tenantId: string; keyId: string; version: number }, s = settings()) =>
  rotateWithDelivery(api.database.db, store, job, api.clock, s, 'rotation-test');

async function verify(verifier: { Authorization: string }, key: string) {
  return (await api.http.post('/v1/verify').set(verifier).send({ key }).expect(200)).body;
}

it('delivers the new secret signed like a webhook, and starts the old key grace only after the 2xx', async () => {
  const f = await dueKey('/ok');
  const outcome = await rotate(f.job);
  expect(outcome).toMatchObject({ status: 'rotated', attempts: 1 });
  if (outcome.status !== 'rotated') throw new Error('not rotated');

  const [delivery] = received.filter((r) => r.path === '/ok');
  const body = JSON.parse(delivery.body);
  expect(Object.keys(body).sort()).toEqual(
    ['expiresAt', 'keyId', 'prefix', 'replaces', 'secret', 'serviceAccountId', 'type'].sort(),
  );
  expect(body).toMatchObject({
    type: 'key.rotated',
    serviceAccountId: f.accountId,
    keyId: outcome.newKeyId,
    replaces: f.key.id,
  });
  expect(
    verifySignature(f.signingSecret, delivery.body, String(delivery.headers['keyward-signature']), {
      now: Math.floor(Date.now() / 1000),
    }),
  ).toBe(true);
  // While the receiver held the request, the old key had no grace: it was the rotation in flight.
  expect(oldKeyAtDelivery.get(delivery)).toEqual({
    grace_ends_at: null,
    pending_replacement: outcome.newKeyId,
  });

  // The delivered key works; the old one works until its grace (a day) ends.
  expect(await verify(f.verifier, body.secret)).toMatchObject({ valid: true, keyId: outcome.newKeyId });
  expect(await verify(f.verifier, f.key.secret)).toMatchObject({ valid: true, keyId: f.key.id });
  const old = (await api.http.get(`/v1/keys/${f.key.id}`).set(f.auth).expect(200)).body;
  expect(old).toMatchObject({ status: 'rotating', replacedBy: outcome.newKeyId });
  const history = (await api.http.get(`/v1/keys/${f.key.id}/history`).set(f.auth).expect(200)).body.items;
  expect(history.map((e: { type: string }) => e.type)).toEqual([
    'KeyIssued',
    'KeyRotationStarted',
    'KeyRotated',
  ]);
  expect(history[2].actor).toMatchObject({ type: 'system', id: 'scheduled-rotation' });
  api.clock.advance(DAY);
  expect(await verify(f.verifier, f.key.secret)).toEqual({ valid: false, code: 'EXPIRED' });

  // The secret rests nowhere: not in any event, row of the read models, nor in Redis.
  const events = await sql<{ n: string }>`
    select count(*) as n from events where data::text like ${'%' + body.secret + '%'} or metadata::text like ${'%' + body.secret + '%'}`.execute(
    api.database.db,
  );
  expect(Number(events.rows[0].n)).toBe(0);
  const dump = await sql<{ t: string }>`select string_agg(k::text, '') as t from keys k`.execute(
    api.database.db,
  );
  expect(dump.rows[0].t).not.toContain(body.secret);
  expect(api.logs()).not.toContain(body.secret);
});

it('retries the delivery and succeeds on a later attempt', async () => {
  answers.set('/flaky', [503, 500, 204]);
  const f = await dueKey('/flaky');
  const outcome = await rotate(f.job);
  expect(outcome).toMatchObject({ status: 'rotated', attempts: 3 });
  const bodies = received.filter((r) => r.path === '/flaky').map((r) => JSON.parse(r.body));
  // Every attempt carries the same key: one rotation, delivered until it lands.
  expect(new Set(bodies.map((b) => b.secret)).size).toBe(1);
});

it('when every attempt fails: the new key is revoked (delivery-failed), the old key keeps working, ROTATION_FAILED is raised', async () => {
  answers.set('/down', [500]);
  const f = await dueKey('/down');
  const outcome = await rotate(f.job);
  expect(outcome).toMatchObject({ status: 'failed', attempts: 3 });
  if (outcome.status !== 'failed') throw new Error('not failed');
  const delivered = JSON.parse(received.filter((r) => r.path === '/down')[0].body);

  expect(await verify(f.verifier, f.key.secret)).toMatchObject({ valid: true, keyId: f.key.id });
  expect(await verify(f.verifier, delivered.secret)).toEqual({ valid: false, code: 'REVOKED' });
  const old = (await api.http.get(`/v1/keys/${f.key.id}`).set(f.auth).expect(200)).body;
  expect(old).toMatchObject({ status: 'active', replacedBy: null });
  const newKeyHistory = (await api.http.get(`/v1/keys/${outcome.newKeyId}/history`).set(f.auth).expect(200))
    .body.items;
  expect(newKeyHistory.at(-1)).toMatchObject({ type: 'KeyRevoked', data: { cause: 'delivery-failed' } });

  const signals = (await api.http.get(`/v1/signals?serviceAccountId=${f.accountId}`).set(f.auth).expect(200))
    .body.items;
  expect(signals).toEqual([
    expect.objectContaining({ type: 'ROTATION_FAILED', keyId: f.key.id, severity: 'high', status: 'open' }),
  ]);
  expect(signals[0].detail).toMatchObject({ revokedReplacement: outcome.newKeyId, attempts: 3 });
  expect(JSON.stringify(signals[0])).not.toContain(delivered.secret);

  // The old key can still be rotated by hand: nothing is left in flight.
  await api.http.post(`/v1/keys/${f.key.id}/rotate`).set(f.auth).send({ gracePeriodSeconds: 60 }).expect(201);
});

it('a run cut off after issuing is settled by the next: the stale replacement revoked, a fresh key delivered', async () => {
  answers.set('/cut', [500, 200]);
  const f = await dueKey('/cut');
  // The first attempt fails, and the process "dies" while waiting to retry.
  await expect(rotate(f.job, settings({ sleep: () => Promise.reject(new Error('killed')) }))).rejects.toThrow(
    'killed',
  );
  const cut = (await api.http.get(`/v1/keys/${f.key.id}`).set(f.auth).expect(200)).body;
  expect(cut.status).toBe('active'); // the old key works in full meanwhile
  const [firstTry] = received.filter((r) => r.path === '/cut').map((r) => JSON.parse(r.body));

  // A retry soon after leaves a rotation that may still be delivering alone.
  expect(await rotate(f.job)).toEqual({
    status: 'skipped',
    reason: 'a rotation of this key is delivering its secret',
  });

  api.clock.advance(STALE_ROTATION_MS);
  const outcome = await rotate(f.job);
  expect(outcome).toMatchObject({ status: 'rotated' });
  if (outcome.status !== 'rotated') throw new Error('not rotated');
  expect(outcome.newKeyId).not.toBe(firstTry.keyId);
  expect(await verify(f.verifier, firstTry.secret)).toEqual({ valid: false, code: 'REVOKED' });
  const last = JSON.parse(received.filter((r) => r.path === '/cut').at(-1)!.body);
  expect(await verify(f.verifier, last.secret)).toMatchObject({ valid: true, keyId: outcome.newKeyId });
  const history = (await api.http.get(`/v1/keys/${f.key.id}/history`).set(f.auth).expect(200)).body.items;
  expect(history.map((e: { type: string }) => e.type)).toEqual([
    'KeyIssued',
    'KeyRotationStarted',
    'KeyRotationAbandoned',
    'KeyRotationStarted',
    'KeyRotated',
  ]);
});

it('two runs of the same job at once rotate once', async () => {
  const f = await dueKey('/race');
  const settled = await Promise.allSettled([rotate(f.job), rotate(f.job)]);
  const rotated = settled.filter((s) => s.status === 'fulfilled' && s.value.status === 'rotated');
  expect(rotated).toHaveLength(1);
  for (const s of settled) {
    if (s.status === 'rejected') expect(s.reason).toBeInstanceOf(StreamVersionConflict);
    else if (s.value.status !== 'rotated') expect(s.value.status).toBe('skipped');
  }
  const keys = (await api.http.get(`/v1/service-accounts/${f.accountId}/keys`).set(f.auth).expect(200)).body
    .items;
  expect(keys).toHaveLength(2);
  // And once more, after it is done: nothing.
  expect((await rotate(f.job)).status).toBe('skipped');
});

it('skips keys that are not due, accounts that do not auto-rotate, and keys changed since the sweep', async () => {
  const f = await dueKey('/skip');
  api.clock.advance(-23 * DAY);
  expect(await rotate(f.job)).toEqual({ status: 'skipped', reason: 'not due' });
  api.clock.advance(23 * DAY);
  expect(await rotate({ ...f.job, version: 7 })).toMatchObject({ status: 'skipped' });
  await api.http
    .patch(`/v1/service-accounts/${f.accountId}`)
    .set(f.auth)
    .send({ rotationPolicy: { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: false } })
    .expect(200);
  expect(await rotate(f.job)).toEqual({
    status: 'skipped',
    reason: 'the account does not rotate automatically',
  });
  expect(received.filter((r) => r.path === '/skip')).toEqual([]);
});

it('an account at maxActiveKeys cannot take the replacement: ROTATION_FAILED, nothing issued', async () => {
  const f = await dueKey('/full');
  await api.http.patch('/v1/policy').set(f.auth).send({ maxActiveKeys: 1 }).expect(200);
  const outcome = await rotate(f.job);
  expect(outcome).toMatchObject({ status: 'failed', newKeyId: null });
  const keys = (await api.http.get(`/v1/service-accounts/${f.accountId}/keys`).set(f.auth).expect(200)).body
    .items;
  expect(keys).toHaveLength(1);
  const signals = (await api.http.get(`/v1/signals?type=ROTATION_FAILED`).set(f.auth).expect(200)).body.items;
  expect(signals).toHaveLength(1);
  expect(received.filter((r) => r.path === '/full')).toEqual([]);
});

it('a rotation job that failed every attempt raises ROTATION_FAILED on the key, naming the error', async () => {
  const f = await dueKey('/job-failed');
  await rotationJobFailed(api.database.db, store, f.job, 'connection terminated', 'rotation-test');
  const signals = (await api.http.get(`/v1/signals?serviceAccountId=${f.accountId}`).set(f.auth).expect(200))
    .body.items;
  expect(signals).toEqual([
    expect.objectContaining({ type: 'ROTATION_FAILED', keyId: f.key.id, status: 'open' }),
  ]);
  expect(signals[0].detail.error).toBe('the rotation job failed: connection terminated');
});

it('a change to the old key while its replacement is delivered does not undo the delivered rotation', async () => {
  const f = await dueKey('/meanwhile');
  // A person narrows the account while the receiver holds the request: the old key's stream moves on.
  meanwhile.set('/meanwhile', async () => {
    await api.http
      .delete(`/v1/service-accounts/${f.accountId}/scopes/summaries:draft`)
      .set(f.auth)
      .expect(200);
  });
  const outcome = await rotate(f.job);
  expect(outcome).toMatchObject({ status: 'rotated' });
  if (outcome.status !== 'rotated') throw new Error('not rotated');
  const history = (await api.http.get(`/v1/keys/${f.key.id}/history`).set(f.auth).expect(200)).body.items;
  expect(history.map((e: { type: string }) => e.type)).toEqual([
    'KeyIssued',
    'KeyRotationStarted',
    'KeyScopesNarrowed',
    'KeyRotated',
  ]);
  const delivered = JSON.parse(received.filter((r) => r.path === '/meanwhile')[0].body);
  expect(await verify(f.verifier, delivered.secret)).toMatchObject({ valid: true, scopes: ['tickets:read'] });
});
