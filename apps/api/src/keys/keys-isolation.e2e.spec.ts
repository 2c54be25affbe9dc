import type { Response } from 'supertest';
import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  eventCount,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * API.md "Callers and credentials" for every key endpoint: another tenant's account or key answers
 * 404 exactly as a missing one and nothing changes; roles are held (403); no credential is 401.
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

interface Fixture {
  tenantId: string;
  auth: Headers;
  accountId: string;
  keyId: string;
  prefix: string;
  secret: string;
}

/** A tenant with a production account and one live key. */
async function fixture(
  tenantId: string,
  scopes: string[] = ['tickets:read'],
): Promise<Fixture & { token: (role: 'admin' | 'approver' | 'auditor' | 'verifier') => Promise<string> }> {
  const tenant = await createTenant(api, tenantId);
  const auth = bearer(tenant.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: `acct-${tenantId}`,
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: scopes,
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(auth)
    .send({ name: 'k1', scopes })
    .expect(201);
  return {
    tenantId,
    token: tenant.token,
    auth,
    accountId: account.body.id,
    keyId: key.body.id,
    prefix: key.body.prefix,
    secret: key.body.secret,
  };
}

/** Every key endpoint, against fixture `b`'s account and key. */
function endpoints(b: Fixture) {
  return {
    issue: (auth: Headers) =>
      api.http
        .post(`/v1/service-accounts/${b.accountId}/keys`)
        .set(auth)
        .send({ name: 'intruder', scopes: ['tickets:read'] }),
    list: (auth: Headers) => api.http.get(`/v1/service-accounts/${b.accountId}/keys`).set(auth),
    get: (auth: Headers) => api.http.get(`/v1/keys/${b.keyId}`).set(auth),
    find: (auth: Headers) => api.http.get('/v1/keys').query({ prefix: b.prefix }).set(auth),
    rotate: (auth: Headers) => api.http.post(`/v1/keys/${b.keyId}/rotate`).set(auth).send({}),
    revoke: (auth: Headers) =>
      api.http.post(`/v1/keys/${b.keyId}/revoke`).set(auth).send({ reason: 'x', emergency: true }),
    revokeAll: (auth: Headers) =>
      api.http.post(`/v1/service-accounts/${b.accountId}/revoke-keys`).set(auth).send({ reason: 'x' }),
  };
}

type Endpoint = keyof ReturnType<typeof endpoints>;
const READS: Endpoint[] = ['list', 'get', 'find'];
const CHANGES: Endpoint[] = ['issue', 'rotate', 'revoke', 'revokeAll'];

async function expectUnchanged(b: Fixture, before: number): Promise<void> {
  expect(await eventCount(api)).toBe(before);
  const key = await api.http.get(`/v1/keys/${b.keyId}`).set(b.auth).expect(200);
  expect(key.body).toMatchObject({ status: 'active', version: 1, replacedBy: null, revokedAt: null });
  const list = await api.http.get(`/v1/service-accounts/${b.accountId}/keys`).set(b.auth).expect(200);
  expect(list.body.items.map((k: { id: string }) => k.id)).toEqual([b.keyId]);
}

describe('tenant isolation', () => {
  it("answers 404 for another tenant's account or key at every key endpoint, and changes nothing", async () => {
    const a = await fixture('iso-keys-a');
    const b = await fixture('iso-keys-b');
    const call = endpoints(b);
    const before = await eventCount(api);

    // B's own admin reaches each one, so the 404s below come from the tenant, not a bad path.
    expect((await call.get(b.auth)).status).toBe(200);
    expect((await call.list(b.auth)).status).toBe(200);
    expect((await call.find(b.auth)).body.items.map((k: { id: string }) => k.id)).toEqual([b.keyId]);

    for (const name of ['issue', 'list', 'get', 'rotate', 'revoke', 'revokeAll'] as Endpoint[]) {
      const res = await call[name](a.auth);
      expectProblem(res, 404, 'NOT_FOUND');
      expect(JSON.stringify(res.body)).not.toContain(b.tenantId);
    }
    const found = await call.find(a.auth).expect(200);
    expect(found.body).toEqual({ items: [], nextCursor: null });

    await expectUnchanged(b, before);
    // A's own key is found by A, and B's search does not find it.
    const own = await api.http.get('/v1/keys').query({ prefix: a.prefix }).set(a.auth).expect(200);
    expect(own.body.items.map((k: { id: string }) => k.id)).toEqual([a.keyId]);
    const across = await api.http.get('/v1/keys').query({ prefix: a.prefix }).set(b.auth).expect(200);
    expect(across.body.items).toEqual([]);
  });

  it("answers another tenant's key as a missing one: the same problem for both", async () => {
    const a = await fixture('iso-keys-same-a');
    const b = await fixture('iso-keys-same-b');
    const theirs = await api.http.get(`/v1/keys/${b.keyId}`).set(a.auth);
    const missing = await api.http.get('/v1/keys/key_00000000000000000000').set(a.auth);
    expectProblem(theirs, 404, 'NOT_FOUND');
    expectProblem(missing, 404, 'NOT_FOUND');
    expect(theirs.body.title).toBe(missing.body.title);
    expect(theirs.body.type).toBe(missing.body.type);
  });

  it("does not verify another tenant's key: UNKNOWN", async () => {
    const a = await fixture('iso-keys-verify-a');
    const b = await fixture('iso-keys-verify-b');
    const verifierA = bearer(await a.token('verifier'));
    const res = await api.http.post('/v1/verify').set(verifierA).send({ key: b.secret }).expect(200);
    expect(res.body).toEqual({ valid: false, code: 'UNKNOWN' });
    const own = await api.http.post('/v1/verify').set(verifierA).send({ key: a.secret }).expect(200);
    expect(own.body).toMatchObject({ valid: true, keyId: a.keyId });
  });
});

describe('roles', () => {
  it.each(['auditor', 'approver'] as const)(
    'lets an %s read keys but not change them (403)',
    async (role) => {
      const b = await fixture(`iso-role-${role}`);
      const auth = bearer(await b.token(role));
      const call = endpoints(b);
      const before = await eventCount(api);

      expect((await call.get(auth)).body).toMatchObject({ id: b.keyId, prefix: b.prefix });
      expect((await call.list(auth)).body.items.map((k: { id: string }) => k.id)).toEqual([b.keyId]);
      expect((await call.find(auth)).body.items.map((k: { id: string }) => k.id)).toEqual([b.keyId]);
      for (const name of READS) expect((await call[name](auth)).status).toBe(200);
      for (const name of CHANGES) expectProblem(await call[name](auth), 403, 'FORBIDDEN');

      await expectUnchanged(b, before);
    },
  );

  it('refuses a verifier everything but verify (403)', async () => {
    const b = await fixture('iso-role-verifier');
    const auth = bearer(await b.token('verifier'));
    const call = endpoints(b);
    const before = await eventCount(api);
    for (const name of [...READS, ...CHANGES]) expectProblem(await call[name](auth), 403, 'FORBIDDEN');
    await expectUnchanged(b, before);
  });

  it('refuses the bootstrap token every key endpoint (403): it manages tenants and operators only', async () => {
    const b = await fixture('iso-role-bootstrap');
    const call = endpoints(b);
    const before = await eventCount(api);
    for (const name of [...READS, ...CHANGES]) {
      expectProblem(await call[name](bearer(BOOTSTRAP_TOKEN)), 403, 'FORBIDDEN');
    }
    await expectUnchanged(b, before);
  });

  it('answers 401 without a credential, or with a malformed, unknown or revoked one', async () => {
    const b = await fixture('iso-role-none', ['tickets:read', 'keyward:read']);
    const call = endpoints(b);
    const before = await eventCount(api);
    const revokedKey = await api.http
      .post(`/v1/service-accounts/${b.accountId}/keys`)
      .set(b.auth)
      .send({ name: 'gone', scopes: ['keyward:read'] })
      .expect(201);
    await api.http.post(`/v1/keys/${revokedKey.body.id}/revoke`).set(b.auth).send({}).expect(200);
    const afterSetup = await eventCount(api);
    expect(afterSetup).toBe(before + 2);

    const credentials: (Headers | null)[] = [
      null,
      { Authorization: 'Basic abc' },
      { Authorization: 'Bearer ' },
      bearer('kwo_not-a-real-operator-token-0123456789'),
      // The key with its last character changed (to one it is not), so its checksum fails.
      bearer(`${b.secret.slice(0, -1)}${b.secret.endsWith('x') ? 'y' : 'x'}`),
      bearer(revokedKey.body.secret as string),
    ];
    for (const name of [...READS, ...CHANGES]) {
      for (const credential of credentials) {
        const res: Response = await call[name](credential ?? {});
        expectProblem(res, 401, 'UNAUTHENTICATED');
      }
    }
    expect(await eventCount(api)).toBe(afterSetup);
  });

  it('lets a service-account key with keyward:read read its own tenant only, and change nothing', async () => {
    const a = await fixture('iso-sa-key-a', ['tickets:read', 'keyward:read']);
    const b = await fixture('iso-sa-key-b');
    const reader = await api.http
      .post(`/v1/service-accounts/${a.accountId}/keys`)
      .set(a.auth)
      .send({ name: 'governance-reader', scopes: ['keyward:read'] })
      .expect(201);
    const auth = bearer(reader.body.secret as string);

    expect((await api.http.get(`/v1/keys/${a.keyId}`).set(auth)).status).toBe(200);
    const own = endpoints({ ...a });
    for (const name of CHANGES) expectProblem(await own[name](auth), 403, 'FORBIDDEN');

    const before = await eventCount(api);
    const theirs = endpoints(b);
    for (const name of ['list', 'get'] as Endpoint[])
      expectProblem(await theirs[name](auth), 404, 'NOT_FOUND');
    expect((await theirs.find(auth)).body.items).toEqual([]);
    await expectUnchanged(b, before);
  });
});
