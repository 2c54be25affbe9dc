import Redis from 'ioredis';
import type { Response } from 'supertest';
import { KeyInvalidations } from '@keyward/keys';
import {
  bearer,
  createTenant,
  newServerErrors,
  startTestApi,
  type TestApi,
  startInstance,
  serverErrorsIn,
  type ApiInstance,
} from '../../../../test/support/api';

/**
 * API.md "Keys": "from the answer on, no API instance accepts the key (each instance within one
 * second at most)". Two API instances, each listening on its own port, share one database and one
 * Redis; a change made through the first must be refused by the second within a second.
 */

const PROPAGATION_MS = 1_000;

let api: TestApi;
let one: ApiInstance;
let two: ApiInstance;

beforeAll(async () => {
  api = await startTestApi();
  one = await startInstance(api);
  two = await startInstance(api);
});
afterAll(async () => {
  await one?.app.close();
  await two?.app.close();
  await api?.close();
});

afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
  expect(serverErrorsIn(one.logs())).toEqual([]);
  expect(serverErrorsIn(two.logs())).toEqual([]);
});

type Headers = Record<string, string>;

let seq = 0;
async function setup(overrides: Record<string, unknown> = {}): Promise<{
  admin: Headers;
  verifier: Headers;
  accountId: string;
  keyId: string;
  key: string;
}> {
  seq += 1;
  const t = await createTenant(api, `revocation-${seq}`);
  const admin = bearer(t.admin);
  const account = await one.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: `acct-${seq}`,
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['tickets:read', 'summaries:draft'],
      ...overrides,
    })
    .expect(201);
  const key = await one.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(admin)
    .send({ name: 'worker', scopes: ['tickets:read', 'summaries:draft'] })
    .expect(201);
  return {
    admin,
    verifier: bearer(await t.token('verifier')),
    accountId: account.body.id,
    keyId: key.body.id,
    key: key.body.secret,
  };
}

function verify(on: ApiInstance, auth: Headers, body: Record<string, unknown>): Promise<Response> {
  return on.http.post('/v1/verify').set(auth).send(body);
}

/** Both instances accept the key, several times each (so any cache either keeps is warm). */
async function bothAccept(auth: Headers, body: Record<string, unknown>): Promise<void> {
  for (let i = 0; i < 3; i++) {
    for (const on of [one, two]) {
      const res = await verify(on, auth, body);
      expect(res.status).toBe(200);
      expect(res.body.valid).toBe(true);
    }
  }
}

/**
 * Polls the instance until it answers `code`, for at most a second from `since`; then checks that
 * it keeps answering so (no flapping back to valid). Returns how long it took.
 */
async function refusedWithinASecond(
  on: ApiInstance,
  auth: Headers,
  body: Record<string, unknown>,
  code: string,
  since: number,
): Promise<number> {
  const deadline = since + PROPAGATION_MS;
  let last: Response | undefined;
  for (;;) {
    last = await verify(on, auth, body);
    expect(last.status).toBe(200);
    if (last.body.valid === false && last.body.code === code) break;
    if (Date.now() > deadline) {
      throw new Error(
        `still ${JSON.stringify(last.body)} ${Date.now() - since} ms after the change; want ${code} within ${PROPAGATION_MS} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const took = Date.now() - since;
  const later = await Promise.all(Array.from({ length: 10 }, () => verify(on, auth, body)));
  expect(later.map((r) => r.body)).toEqual(later.map(() => ({ valid: false, code })));
  return took;
}

it('a key revoked through one instance is refused by the other within a second', async () => {
  const s = await setup();
  await bothAccept(s.verifier, { key: s.key });
  const revoked = await one.http.post(`/v1/keys/${s.keyId}/revoke`).set(s.admin).send({ reason: 'leaked' });
  const answeredAt = Date.now();
  expect(revoked.status).toBe(200);
  expect(revoked.body.status).toBe('revoked');
  // From the answer on, the instance that revoked it refuses it at once.
  expect((await verify(one, s.verifier, { key: s.key })).body).toEqual({ valid: false, code: 'REVOKED' });
  await refusedWithinASecond(two, s.verifier, { key: s.key }, 'REVOKED', answeredAt);
});

it('a revocation made while the other instance is under load reaches it within a second', async () => {
  const s = await setup();
  await bothAccept(s.verifier, { key: s.key });
  let stop = false;
  const seen: Array<{ at: number; valid: boolean }> = [];
  const load = (async () => {
    while (!stop) {
      const batch = await Promise.all(
        Array.from({ length: 5 }, () => verify(two, s.verifier, { key: s.key })),
      );
      const at = Date.now();
      for (const res of batch) {
        expect(res.status).toBe(200);
        seen.push({ at, valid: res.body.valid === true });
      }
    }
  })();
  try {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await one.http.post(`/v1/keys/${s.keyId}/revoke`).set(s.admin).send({ emergency: true }).expect(200);
    const answeredAt = Date.now();
    await refusedWithinASecond(two, s.verifier, { key: s.key }, 'REVOKED', answeredAt);
    stop = true;
    await load;
    const lateValid = seen.filter((x) => x.valid && x.at > answeredAt + PROPAGATION_MS);
    expect(lateValid).toEqual([]);
    expect(seen.some((x) => x.valid)).toBe(true); // the load did run before the revocation
  } finally {
    stop = true;
    await load.catch(() => undefined);
  }
});

it('an account disabled through one instance is ACCOUNT_DISABLED on the other within a second, and back', async () => {
  const s = await setup();
  await bothAccept(s.verifier, { key: s.key });
  await one.http
    .post(`/v1/service-accounts/${s.accountId}/disable`)
    .set(s.admin)
    .send({ reason: 'incident' })
    .expect(200);
  await refusedWithinASecond(two, s.verifier, { key: s.key }, 'ACCOUNT_DISABLED', Date.now());
  await one.http.post(`/v1/service-accounts/${s.accountId}/enable`).set(s.admin).send({}).expect(200);
  const enabledAt = Date.now();
  for (;;) {
    const res = await verify(two, s.verifier, { key: s.key });
    if (res.body.valid === true) break;
    expect(Date.now() - enabledAt).toBeLessThanOrEqual(PROPAGATION_MS);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
});

it('a scope removed from the account is refused on the other instance within a second', async () => {
  const s = await setup();
  await bothAccept(s.verifier, { key: s.key, scope: 'summaries:draft' });
  await one.http
    .delete(`/v1/service-accounts/${s.accountId}/scopes/summaries:draft`)
    .set(s.admin)
    .send({})
    .expect(200);
  await refusedWithinASecond(
    two,
    s.verifier,
    { key: s.key, scope: 'summaries:draft' },
    'INSUFFICIENT_SCOPE',
    Date.now(),
  );
  expect((await verify(two, s.verifier, { key: s.key, scope: 'tickets:read' })).body.valid).toBe(true);
});

it('a rotation with no grace ends the old key on the other instance within a second', async () => {
  const s = await setup();
  await bothAccept(s.verifier, { key: s.key });
  const rotated = await one.http
    .post(`/v1/keys/${s.keyId}/rotate`)
    .set(s.admin)
    .send({ gracePeriodSeconds: 0 })
    .expect(201);
  await refusedWithinASecond(two, s.verifier, { key: s.key }, 'EXPIRED', Date.now());
  expect((await verify(two, s.verifier, { key: rotated.body.secret })).body.valid).toBe(true);
});

it('break-glass revocation and account deletion reach the other instance within a second', async () => {
  const s = await setup();
  const second = await one.http
    .post(`/v1/service-accounts/${s.accountId}/keys`)
    .set(s.admin)
    .send({ name: 'second', scopes: ['tickets:read'] })
    .expect(201);
  await bothAccept(s.verifier, { key: s.key });
  await bothAccept(s.verifier, { key: second.body.secret });
  await one.http
    .post(`/v1/service-accounts/${s.accountId}/revoke-keys`)
    .set(s.admin)
    .send({ reason: 'incident' })
    .expect(200);
  const at = Date.now();
  await refusedWithinASecond(two, s.verifier, { key: s.key }, 'REVOKED', at);
  await refusedWithinASecond(two, s.verifier, { key: second.body.secret }, 'REVOKED', at);

  const d = await setup();
  await bothAccept(d.verifier, { key: d.key });
  await one.http
    .delete(`/v1/service-accounts/${d.accountId}`)
    .set(d.admin)
    .send({ reason: 'retired' })
    .expect(200);
  await refusedWithinASecond(two, d.verifier, { key: d.key }, 'REVOKED', Date.now());
});

it('a revoked service-account key stops authenticating on the other instance within a second', async () => {
  seq += 1;
  const t = await createTenant(api, `revocation-caller-${seq}`);
  const admin = bearer(t.admin);
  const account = await one.http
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
  const key = await one.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(admin)
    .send({ name: 'reader', scopes: ['keyward:read'] })
    .expect(201);
  const caller = bearer(key.body.secret);
  await two.http.get('/v1/service-accounts').set(caller).expect(200);
  await one.http.post(`/v1/keys/${key.body.id}/revoke`).set(admin).send({}).expect(200);
  const at = Date.now();
  for (;;) {
    const res = await two.http.get('/v1/service-accounts').set(caller);
    if (res.status === 401) break;
    expect(res.status).toBe(200);
    expect(Date.now() - at).toBeLessThanOrEqual(PROPAGATION_MS);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
});

describe('the key cache when an invalidation is lost', () => {
  /**
   * An instance on a channel of its own: it caches like any other but hears none of the
   * invalidations the others send, which is what a lost message looks like from its side.
   */
  async function deaf(): Promise<ApiInstance> {
    return startInstance(api, { ...api.config, redisPrefix: `${api.config.redisPrefix}-deaf` });
  }

  it('keeps a revoked key alive on an instance that missed the message no longer than the entry lifetime', async () => {
    const deafened = await deaf();
    try {
      const s = await setup();
      for (let i = 0; i < 3; i++)
        expect((await verify(deafened, s.verifier, { key: s.key })).body.valid).toBe(true);
      await one.http.post(`/v1/keys/${s.keyId}/revoke`).set(s.admin).send({}).expect(200);
      // It missed the message, so its cached entry still says valid: the cache is real ...
      expect((await verify(deafened, s.verifier, { key: s.key })).body.valid).toBe(true);
      api.clock.advance(api.config.keyCacheTtlMs - 1);
      expect((await verify(deafened, s.verifier, { key: s.key })).body.valid).toBe(true);
      // ... and the entry's own lifetime ends it.
      api.clock.advance(1);
      expect((await verify(deafened, s.verifier, { key: s.key })).body).toEqual({
        valid: false,
        code: 'REVOKED',
      });
      expect(serverErrorsIn(deafened.logs())).toEqual([]);
    } finally {
      await deafened.app.close();
    }
  });

  it('stops trusting its cache the moment its subscription drops, and caches again once resubscribed', async () => {
    const deafened = await deaf();
    const admin = new Redis(api.config.redisUrl);
    try {
      const s = await setup();
      expect((await verify(deafened, s.verifier, { key: s.key })).body.valid).toBe(true);
      await one.http.post(`/v1/keys/${s.keyId}/revoke`).set(s.admin).send({}).expect(200);
      expect((await verify(deafened, s.verifier, { key: s.key })).body.valid).toBe(true);

      // Cut its subscriber connection: whatever was sent meanwhile is lost, so it must not
      // answer from memory any more, and it answers REVOKED without the clock moving.
      const channel = deafened.app.get(KeyInvalidations).channel;
      const subscriberIds = async () =>
        ((await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string)
          .split('\n')
          .filter((line) => line.includes(`name=${channel} `))
          .map((line) => /id=(\d+)/.exec(line)![1]);
      const [id] = await subscriberIds();
      expect(id).toBeDefined();
      await admin.call('CLIENT', 'KILL', 'ID', id);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await verify(deafened, s.verifier, { key: s.key })).body).toEqual({
        valid: false,
        code: 'REVOKED',
      });

      // ioredis reconnects and subscribes again; from then on it caches again (a second key
      // revoked unheard stays valid there until its entry expires).
      const deadline = Date.now() + 5_000;
      while ((await subscriberIds()).length === 0) {
        if (Date.now() > deadline) throw new Error('the subscriber did not come back');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      const t = await setup();
      expect((await verify(deafened, t.verifier, { key: t.key })).body.valid).toBe(true);
      await one.http.post(`/v1/keys/${t.keyId}/revoke`).set(t.admin).send({}).expect(200);
      expect((await verify(deafened, t.verifier, { key: t.key })).body.valid).toBe(true);
      expect(serverErrorsIn(deafened.logs())).toEqual([]);
    } finally {
      admin.disconnect();
      await deafened.app.close();
    }
  });
});

/**
 * The auth guard caches operator credentials like keys (no PostgreSQL read on a warm verifier),
 * with the same guarantees: a deleted operator is refused by every instance within a second, an
 * entry lives at most the cache lifetime, and an instance whose subscription is down does not
 * trust its cache.
 */
describe('operator credentials', () => {
  async function operatorOf(admin: Headers, tenantId: string, role: string) {
    seq += 1;
    const res = await api.http
      .post('/v1/operators')
      .set(admin)
      .send({ tenantId, name: `${role}-${seq}`, role })
      .expect(201);
    return { id: res.body.id as string, auth: bearer(res.body.token as string) };
  }

  async function operatorSetup() {
    const s = await setup();
    const tenantId = (await one.http.get('/v1/service-accounts/' + s.accountId).set(s.admin)).body.tenantId;
    const verifier = await operatorOf(s.admin, tenantId, 'verifier');
    return { ...s, verifier };
  }

  async function refusedWithin(on: ApiInstance, auth: Headers, key: string, since: number): Promise<number> {
    for (;;) {
      const res = await verify(on, auth, { key });
      if (res.status === 401) return Date.now() - since;
      expect(res.status).toBe(200);
      if (Date.now() > since + PROPAGATION_MS) {
        throw new Error(`the deleted operator still verifies ${Date.now() - since} ms after the change`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it('a verifier deleted through one instance is refused by the other within a second', async () => {
    const s = await operatorSetup();
    for (const on of [one, two])
      expect((await verify(on, s.verifier.auth, { key: s.key })).body.valid).toBe(true);
    const since = Date.now();
    await one.http.delete(`/v1/operators/${s.verifier.id}`).set(s.admin).expect(200);
    expect(await refusedWithin(two, s.verifier.auth, s.key, since)).toBeLessThanOrEqual(PROPAGATION_MS);
    expect((await verify(one, s.verifier.auth, { key: s.key })).status).toBe(401);
  });

  it('keeps a deleted operator on an instance that missed the message no longer than the entry lifetime', async () => {
    const deafened = await startInstance(api, {
      ...api.config,
      redisPrefix: `${api.config.redisPrefix}-deaf-op`,
    });
    try {
      const s = await operatorSetup();
      expect((await verify(deafened, s.verifier.auth, { key: s.key })).body.valid).toBe(true);
      await one.http.delete(`/v1/operators/${s.verifier.id}`).set(s.admin).expect(200);
      // Missed the message: the cached credential still authenticates, so the cache is real ...
      expect((await verify(deafened, s.verifier.auth, { key: s.key })).status).toBe(200);
      api.clock.advance(api.config.keyCacheTtlMs - 1);
      expect((await verify(deafened, s.verifier.auth, { key: s.key })).status).toBe(200);
      // ... and the entry's own lifetime ends it.
      api.clock.advance(1);
      expect((await verify(deafened, s.verifier.auth, { key: s.key })).status).toBe(401);
    } finally {
      await deafened.app.close();
    }
  });

  it('does not trust cached operators while its subscription is down', async () => {
    const deafened = await startInstance(api, {
      ...api.config,
      redisPrefix: `${api.config.redisPrefix}-deaf-sub`,
    });
    const admin = new Redis(api.config.redisUrl);
    try {
      const s = await operatorSetup();
      expect((await verify(deafened, s.verifier.auth, { key: s.key })).body.valid).toBe(true);
      await one.http.delete(`/v1/operators/${s.verifier.id}`).set(s.admin).expect(200);
      expect((await verify(deafened, s.verifier.auth, { key: s.key })).status).toBe(200);
      const channel = deafened.app.get(KeyInvalidations).channel;
      const list = (await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
      const id = list
        .split('\n')
        .filter((line) => line.includes(`name=${channel} `))
        .map((line) => /id=(\d+)/.exec(line)![1])[0];
      expect(id).toBeDefined();
      await admin.call('CLIENT', 'KILL', 'ID', id);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await verify(deafened, s.verifier.auth, { key: s.key })).status).toBe(401);
    } finally {
      admin.disconnect();
      await deafened.app.close();
    }
  });
});
