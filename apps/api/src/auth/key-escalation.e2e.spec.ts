import type { Response } from 'supertest';
import {
  bearer,
  createTenant,
  eventCount,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * A service-account key with `keyward:admin` acts for automation a person set up; it may work
 * within what people decided but never extend it (docs/ARCHITECTURE.md "What a key may do"): no
 * operators, no wider ceiling, no secret delivery, no policy, and nothing it makes reaches beyond
 * itself. Every refusal is a 403 naming what was needed, and writes nothing.
 */

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});

afterEach(() => expect(newServerErrors(api)).toEqual([]));

type Headers = Record<string, string>;

let seq = 0;
function unique(base: string): string {
  seq += 1;
  return `${base}-${seq}`;
}

interface Scene {
  tenantId: string;
  admin: Headers;
  adminOperatorId: string;
  /** The staging pipeline's key: keyward:admin and tickets:read, from an account whose ceiling holds every keyward scope. */
  key: Headers;
  keyId: string;
  pipelineId: string;
  /** Another staging account, made by a person, whose ceiling holds keyward:admin and tickets:write, with an admin key. */
  otherId: string;
  otherKeyId: string;
  /** A production account made by a person. */
  productionId: string;
  /** A staging account held to plant 7 and 10.20.0.0/16. */
  boundedId: string;
}

async function account(admin: Headers, body: Record<string, unknown>): Promise<string> {
  const res = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({ name: unique('acct'), businessOwner: 'ops', technicalOwner: 'platform', ...body });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function issue(auth: Headers, accountId: string, body: Record<string, unknown>): Promise<Response> {
  return api.http
    .post(`/v1/service-accounts/${accountId}/keys`)
    .set(auth)
    .send({ name: unique('key'), ...body });
}

async function scene(keyScopes = ['keyward:admin', 'tickets:read']): Promise<Scene> {
  const t = await createTenant(api, unique('esc'));
  const admin = bearer(t.admin);
  const operators = await api.http.get('/v1/operators').set(admin).expect(200);
  const pipelineId = await account(admin, {
    environment: 'staging',
    allowedScopes: ['keyward:admin', 'keyward:*', 'keyward:approve', 'keyward:read', 'tickets:read'],
  });
  const key = await issue(admin, pipelineId, { scopes: keyScopes });
  expect(key.status).toBe(201);
  const otherId = await account(admin, {
    environment: 'staging',
    allowedScopes: ['keyward:admin', 'tickets:read', 'tickets:write'],
  });
  const otherKey = await issue(admin, otherId, { scopes: ['keyward:admin'] });
  expect(otherKey.status).toBe(201);
  return {
    tenantId: t.tenantId,
    admin,
    adminOperatorId: operators.body.items[0].id,
    key: bearer(key.body.secret),
    keyId: key.body.id,
    pipelineId,
    otherId,
    otherKeyId: otherKey.body.id,
    productionId: await account(admin, { environment: 'production', allowedScopes: ['tickets:read'] }),
    boundedId: await account(admin, {
      environment: 'staging',
      allowedScopes: ['tickets:read'],
      boundaries: ['site:plant-7'],
      allowedCidrs: ['10.20.0.0/16'],
    }),
  };
}

/** The request is refused with 403 naming `needed`, and not one event is written. */
async function expectRefused(request: () => Promise<Response>, needed: string | RegExp): Promise<void> {
  const before = await eventCount(api);
  const res = await request();
  expectProblem(res, 403, 'FORBIDDEN');
  expect(res.body.detail).toMatch(needed);
  expect(await eventCount(api)).toBe(before);
}

describe('what a keyward:admin key may never do', () => {
  let s: Scene;
  beforeAll(async () => {
    s = await scene();
  });

  it.each(['admin', 'approver', 'auditor', 'verifier'])('create an operator (%s)', async (role) => {
    const before = await api.http.get('/v1/operators').set(s.admin).expect(200);
    await expectRefused(
      () =>
        api.http
          .post('/v1/operators')
          .set(s.key)
          .send({ name: unique('mallory'), role }),
      /manage-operators permission, which no service-account key holds/,
    );
    const after = await api.http.get('/v1/operators').set(s.admin).expect(200);
    expect(after.body.items).toEqual(before.body.items);
  });

  it('create an operator with keyward:* either', async () => {
    const star = await scene(['keyward:*', 'tickets:read']);
    await expectRefused(
      () => api.http.post('/v1/operators').set(star.key).send({ name: 'mallory', role: 'admin' }),
      /manage-operators/,
    );
  });

  it('delete an operator: the tenant admin stays, and its token still works', async () => {
    await expectRefused(
      () => api.http.delete(`/v1/operators/${s.adminOperatorId}`).set(s.key).send({ reason: 'takeover' }),
      /manage-operators/,
    );
    const op = await api.http.get(`/v1/operators/${s.adminOperatorId}`).set(s.admin).expect(200);
    expect(op.body.status).toBe('active');
  });

  it.each([
    ['another account, with a keyward scope', 'otherId', ['keyward:*']],
    ['another account, with a scope the key holds', 'productionId', ['tickets:write']],
    ['its own account', 'pipelineId', ['tickets:write']],
  ] as const)('widen a ceiling through POST /scopes: %s', async (_, which, scopes) => {
    const id = s[which];
    const before = await api.http.get(`/v1/service-accounts/${id}`).set(s.admin).expect(200);
    await expectRefused(
      () => api.http.post(`/v1/service-accounts/${id}/scopes`).set(s.key).send({ scopes }),
      /widen-ceiling permission/,
    );
    const after = await api.http.get(`/v1/service-accounts/${id}`).set(s.admin).expect(200);
    expect(after.body.allowedScopes).toEqual(before.body.allowedScopes);
    expect(after.body.version).toBe(before.body.version);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'keyward:admin',
      { allowedScopes: ['keyward:admin'] },
      /keyward:admin: a keyward scope is given only by a person/,
    ],
    ['keyward:*', { allowedScopes: ['tickets:read', 'keyward:*'] }, /keyward:\*: a keyward scope/],
    ['keyward:read', { allowedScopes: ['keyward:read'] }, /keyward:read: a keyward scope/],
    [
      'a scope its key lacks',
      { allowedScopes: ['tickets:write'] },
      /tickets:write: not among the key's own scopes/,
    ],
    ['a wider scope than its own', { allowedScopes: ['tickets:*'] }, /tickets:\*: not among/],
    [
      'production',
      { environment: 'production', allowedScopes: ['tickets:read'] },
      /environment is production/,
    ],
    [
      'development, even empty',
      { environment: 'development', allowedScopes: [] },
      /environment is development/,
    ],
    ['a secret delivery', { secretDelivery: { url: 'https://vault.example/keys' } }, /set-secret-delivery/],
  ])('create an account with %s', async (_, body, needed) => {
    const name = unique('escalated');
    await expectRefused(
      () =>
        api.http
          .post('/v1/service-accounts')
          .set(s.key)
          .send({
            name,
            environment: 'staging',
            businessOwner: 'ops',
            technicalOwner: 'platform',
            allowedScopes: ['tickets:read'],
            ...body,
          }),
      needed,
    );
    const found = await api.http.get(`/v1/service-accounts?q=${name}`).set(s.admin).expect(200);
    expect(found.body.items).toEqual([]);
  });

  it.each<[string, keyof Scene, Record<string, unknown>, RegExp]>([
    [
      'a keyward:admin key to another account',
      'otherId',
      { scopes: ['keyward:admin'] },
      /keyward:admin: a keyward scope/,
    ],
    [
      'a key with a scope of that account it lacks',
      'otherId',
      { scopes: ['tickets:write'] },
      /tickets:write: not among/,
    ],
    ['a keyward:admin key to its own account', 'pipelineId', { scopes: ['keyward:admin'] }, /keyward:admin/],
    [
      'a keyward:* key to its own account',
      'pipelineId',
      { scopes: ['keyward:*', 'tickets:read'] },
      /keyward:\*/,
    ],
    ['a production key', 'productionId', { scopes: ['tickets:read'] }, /environment is production/],
  ])('issue %s', async (_, which, body, needed) => {
    const id = s[which] as string;
    const before = await api.http.get(`/v1/service-accounts/${id}/keys`).set(s.admin).expect(200);
    await expectRefused(() => issue(s.key, id, body), needed);
    const after = await api.http.get(`/v1/service-accounts/${id}/keys`).set(s.admin).expect(200);
    expect(after.body.items).toHaveLength(before.body.items.length);
  });

  it('issue a key that outlives its own', async () => {
    const own = await scene();
    api.clock.advance(86_400_000);
    // Staging keys live 180 days by default: a day later, a default one would outlive the caller.
    await expectRefused(
      () => issue(own.key, own.boundedId, { scopes: ['tickets:read'] }),
      /expiresInDays would work until/,
    );
    const res = await issue(own.key, own.boundedId, { scopes: ['tickets:read'], expiresInDays: 179 });
    expect(res.status).toBe(201);
  });

  it.each([
    ['another account’s keyward:admin key', 'otherKeyId'],
    ['its own key (rotating is issuing)', 'keyId'],
  ] as const)('rotate %s, which would answer a new admin secret', async (_, which) => {
    const keyId = s[which];
    await expectRefused(
      () => api.http.post(`/v1/keys/${keyId}/rotate`).set(s.key).send({ gracePeriodSeconds: 0 }),
      /keyward:admin: a keyward scope/,
    );
    const key = await api.http.get(`/v1/keys/${keyId}`).set(s.admin).expect(200);
    expect(key.body.status).toBe('active');
    expect(key.body.replacedBy ?? null).toBeNull();
  });

  it('point another account’s secret delivery somewhere, where its next rotated admin key would go', async () => {
    await expectRefused(
      () =>
        api.http
          .patch(`/v1/service-accounts/${s.otherId}`)
          .set(s.key)
          .send({ secretDelivery: { url: 'https://attacker.example/keys' } }),
      /set-secret-delivery permission/,
    );
    const delivery = await api.database.db
      .selectFrom('secret_delivery_secrets')
      .selectAll()
      .where('service_account_id', '=', s.otherId)
      .execute();
    expect(delivery).toEqual([]);
  });

  it.each<[string, Record<string, unknown>]>([
    ['unbound it', { boundaries: [] }],
    ['move it elsewhere', { boundaries: ['site:plant-8'] }],
    ['let it in from anywhere', { allowedCidrs: [] }],
    ['let it in from a wider network', { allowedCidrs: ['10.0.0.0/8'] }],
  ])("widen an account's boundaries or addresses through PATCH: %s", async (_, body) => {
    await expectRefused(
      () => api.http.patch(`/v1/service-accounts/${s.boundedId}`).set(s.key).send(body),
      /widen-ceiling permission/,
    );
    const after = await api.http.get(`/v1/service-accounts/${s.boundedId}`).set(s.admin).expect(200);
    expect(after.body.boundaries).toEqual(['site:plant-7']);
    expect(after.body.allowedCidrs).toEqual(['10.20.0.0/16']);
  });

  it('change the tenant policy (an exposed key only flagged, not revoked)', async () => {
    await expectRefused(
      () => api.http.patch('/v1/policy').set(s.key).send({ exposureAction: 'flag' }),
      /change-policy permission/,
    );
    const policy = await api.http.get('/v1/policy').set(s.admin).expect(200);
    expect(policy.body.exposureAction).toBe('revoke');
  });

  it('a bounded key cannot make an unbounded account or key', async () => {
    const t = await scene();
    // A key of a bounded account, with keyward:admin and no boundaries of its own: it inherits plant 7.
    const boundedAdminAccount = await account(t.admin, {
      environment: 'staging',
      allowedScopes: ['keyward:admin', 'tickets:read'],
      boundaries: ['site:plant-7'],
    });
    const boundedAdmin = await issue(t.admin, boundedAdminAccount, {
      scopes: ['keyward:admin', 'tickets:read'],
    });
    const auth = bearer(boundedAdmin.body.secret);
    await expectRefused(
      () =>
        api.http
          .post('/v1/service-accounts')
          .set(auth)
          .send({
            name: unique('unbounded'),
            environment: 'staging',
            businessOwner: 'ops',
            technicalOwner: 'platform',
            allowedScopes: ['tickets:read'],
          }),
      /boundaries unbounded, where the key itself is bounded to site:plant-7/,
    );
    await expectRefused(() => issue(auth, t.otherId, { scopes: ['tickets:read'] }), /boundaries unbounded/);
    const within = await issue(auth, t.otherId, {
      scopes: ['tickets:read'],
      boundaries: ['site:plant-7/asset:1'],
    });
    expect(within.status).toBe(201);
  });
});

describe('what a keyward:admin key still may do', () => {
  it('make an account and a key within its own reach, which then verifies', async () => {
    const s = await scene();
    const made = await api.http
      .post('/v1/service-accounts')
      .set(s.key)
      .send({
        name: unique('made'),
        environment: 'staging',
        businessOwner: 'ops',
        technicalOwner: 'platform',
        allowedScopes: ['tickets:read'],
      });
    expect(made.status).toBe(201);
    const key = await issue(s.key, made.body.id, { scopes: ['tickets:read'], expiresInDays: 30 });
    expect(key.status).toBe(201);
    // Rotating it keeps its 30 days, inside the caller's own lifetime.
    const rotated = await api.http
      .post(`/v1/keys/${key.body.id}/rotate`)
      .set(s.key)
      .send({ gracePeriodSeconds: 60 });
    expect(rotated.status).toBe(201);
    expect(rotated.body.scopes).toEqual(['tickets:read']);
    // And a key for a person-made account, with a scope of its ceiling the caller holds too.
    expect((await issue(s.key, s.otherId, { scopes: ['tickets:read'] })).status).toBe(201);
    const verified = await api.http
      .post('/v1/verify')
      .set(s.key)
      .send({ key: key.body.secret, scope: 'tickets:read' })
      .expect(200);
    expect(verified.body.valid).toBe(true);
  });

  it('narrow, disable, enable, revoke: taking power away needs no second person', async () => {
    const s = await scene();
    await api.http
      .patch(`/v1/service-accounts/${s.boundedId}`)
      .set(s.key)
      .send({ boundaries: ['site:plant-7/asset:1'], allowedCidrs: ['10.20.1.0/24'] })
      .expect(200);
    await api.http
      .delete(`/v1/service-accounts/${s.otherId}/scopes/tickets:write`)
      .set(s.key)
      .send({})
      .expect(200);
    await api.http.post(`/v1/service-accounts/${s.productionId}/disable`).set(s.key).send({}).expect(200);
    await api.http.post(`/v1/service-accounts/${s.productionId}/enable`).set(s.key).send({}).expect(200);
    await api.http.post(`/v1/keys/${s.otherKeyId}/revoke`).set(s.key).send({ reason: 'cleanup' }).expect(200);
    // Descriptive fields, and clearing a delivery, are no widening.
    await api.http
      .patch(`/v1/service-accounts/${s.otherId}`)
      .set(s.key)
      .send({ description: 'owned by the pipeline', secretDelivery: null })
      .expect(200);
  });
});

describe('operators keep their rights', () => {
  it('an admin operator creates and deletes operators, widens ceilings, issues admin keys, changes policy', async () => {
    const s = await scene();
    const op = await api.http
      .post('/v1/operators')
      .set(s.admin)
      .send({ name: 'bob', role: 'auditor' })
      .expect(201);
    await api.http.delete(`/v1/operators/${op.body.id}`).set(s.admin).send({}).expect(200);
    await api.http
      .post(`/v1/service-accounts/${s.productionId}/scopes`)
      .set(s.admin)
      .send({ scopes: ['tickets:write'] })
      .expect(200);
    expect((await issue(s.admin, s.otherId, { scopes: ['keyward:admin'] })).status).toBe(201);
    await api.http.post(`/v1/keys/${s.otherKeyId}/rotate`).set(s.admin).send({}).expect(201);
    await api.http
      .patch(`/v1/service-accounts/${s.boundedId}`)
      .set(s.admin)
      .send({ boundaries: [] })
      .expect(200);
    await api.http.patch('/v1/policy').set(s.admin).send({ exposureAction: 'flag' }).expect(200);
    const made = await api.http
      .post('/v1/service-accounts')
      .set(s.admin)
      .send({
        name: unique('by-person'),
        environment: 'production',
        businessOwner: 'ops',
        technicalOwner: 'platform',
        allowedScopes: ['keyward:admin', 'payments:write'],
      });
    expect(made.status).toBe(201);
  });
});
