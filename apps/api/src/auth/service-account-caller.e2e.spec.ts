import {
  bearer,
  createTenant,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';
import { checkOf, issueKeySecret } from '@keyward/keys';

/**
 * API.md "Callers and credentials": a service-account key is a credential for Keyward's own API;
 * its `keyward:*` scopes are its permissions, in its own tenant only. A revoked, expired or
 * otherwise refused key is 401; a known key without the permission is 403.
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

interface Tenant {
  tenantId: string;
  admin: Headers;
}

let seq = 0;
function unique(base: string): string {
  seq += 1;
  return `${base}-${seq}`;
}

async function tenant(base: string): Promise<Tenant> {
  const t = await createTenant(api, unique(base));
  return { tenantId: t.tenantId, admin: bearer(t.admin) };
}

/** A staging account (no approval gate) whose ceiling holds every governance scope, and a key. */
async function callerKey(
  t: Tenant,
  scopes: string[],
  key: Record<string, unknown> = {},
  ceiling: string[] = [
    'keyward:*',
    'keyward:admin',
    'keyward:read',
    'keyward:audit',
    'keyward:approve',
    'keyward:verify',
    'tickets:read',
  ],
): Promise<{ accountId: string; accountName: string; keyId: string; secret: string; auth: Headers }> {
  const account = await api.http
    .post('/v1/service-accounts')
    .set(t.admin)
    .send({
      name: unique('automation'),
      environment: 'staging',
      businessOwner: 'platform',
      technicalOwner: 'platform',
      allowedScopes: ceiling,
    });
  expect(account.status).toBe(201);
  const issued = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(t.admin)
    .send({ name: unique('key'), scopes, ...key });
  expect(issued.status).toBe(201);
  return {
    accountId: account.body.id,
    accountName: account.body.name,
    keyId: issued.body.id,
    secret: issued.body.secret,
    auth: bearer(issued.body.secret),
  };
}

/** An account a key may make: in its own environment, with a scope its own key holds. */
function newAccount(): Record<string, unknown> {
  return {
    name: unique('made-by-key'),
    environment: 'staging',
    businessOwner: 'support-ops',
    technicalOwner: 'ai-platform',
    allowedScopes: ['tickets:read'],
  };
}

describe('keyward:read', () => {
  it('may read accounts and keys but change nothing', async () => {
    const t = await tenant('reader');
    const caller = await callerKey(t, ['keyward:read']);
    const list = await api.http.get('/v1/service-accounts').set(caller.auth);
    expect(list.status).toBe(200);
    expect(list.body.items.map((a: { id: string }) => a.id)).toContain(caller.accountId);
    await api.http.get(`/v1/service-accounts/${caller.accountId}`).set(caller.auth).expect(200);
    await api.http.get(`/v1/keys/${caller.keyId}`).set(caller.auth).expect(200);
    await api.http.get('/v1/policy').set(caller.auth).expect(200);
    expectProblem(
      await api.http.post('/v1/service-accounts').set(caller.auth).send(newAccount()),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await api.http.post(`/v1/service-accounts/${caller.accountId}/disable`).set(caller.auth).send({}),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await api.http.post(`/v1/keys/${caller.keyId}/revoke`).set(caller.auth).send({}),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await api.http.post('/v1/verify').set(caller.auth).send({ key: caller.secret }),
      403,
      'FORBIDDEN',
    );
  });

  it('cannot be issued unless the account ceiling contains it (422)', async () => {
    const t = await tenant('ceiling');
    const account = await api.http.post('/v1/service-accounts').set(t.admin).send(newAccount()).expect(201);
    const res = await api.http
      .post(`/v1/service-accounts/${account.body.id}/keys`)
      .set(t.admin)
      .send({ name: 'reader', scopes: ['keyward:read'] });
    expectProblem(res, 422, 'POLICY_VIOLATION');
  });
});

describe('keyward:admin and keyward:*', () => {
  it('may create an account, recorded as done by the service account and its key', async () => {
    const t = await tenant('adminkey');
    const caller = await callerKey(t, ['keyward:admin', 'tickets:read']);
    const created = await api.http.post('/v1/service-accounts').set(caller.auth).send(newAccount());
    expect(created.status).toBe(201);
    const rows = await api.database.db
      .selectFrom('events')
      .select(['type', 'tenant_id', 'metadata'])
      .where('stream_id', '=', created.body.id)
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0].tenant_id).toBe(t.tenantId);
    const actor = (rows[0].metadata as { actor: { type: string; id: string; name: string } }).actor;
    expect(actor.type).toBe('service-account');
    expect(actor.id).toBe(caller.accountId);
    expect(actor.name).toContain(caller.accountName);
    expect(actor.name).toContain(caller.keyId);
    expect(JSON.stringify(rows)).not.toContain(caller.secret);
  });

  it('keyward:* may do everything keyward:admin may', async () => {
    const t = await tenant('starkey');
    const caller = await callerKey(t, ['keyward:*', 'tickets:read']);
    const created = await api.http.post('/v1/service-accounts').set(caller.auth).send(newAccount());
    expect(created.status).toBe(201);
    await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
    const other = await callerKey(t, ['tickets:read']);
    const verified = await api.http.post('/v1/verify').set(caller.auth).send({ key: other.secret });
    expect(verified.status).toBe(200);
    expect(verified.body.valid).toBe(true);
  });
});

describe('keyward:verify', () => {
  it('may verify keys of its tenant, and nothing else', async () => {
    const t = await tenant('verifykey');
    const caller = await callerKey(t, ['keyward:verify']);
    const target = await callerKey(t, ['tickets:read']);
    const res = await api.http
      .post('/v1/verify')
      .set(caller.auth)
      .send({ key: target.secret, scope: 'tickets:read' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expect.objectContaining({ valid: true, keyId: target.keyId }));
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 403, 'FORBIDDEN');
    const other = await tenant('verifykey-other');
    const foreign = await callerKey(other, ['tickets:read']);
    expect((await api.http.post('/v1/verify').set(caller.auth).send({ key: foreign.secret })).body).toEqual({
      valid: false,
      code: 'UNKNOWN',
    });
  });
});

describe('refused keys', () => {
  it('a key without keyward scopes is known but not allowed: 403', async () => {
    const t = await tenant('noscopes');
    const caller = await callerKey(t, ['tickets:read']);
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 403, 'FORBIDDEN');
    expectProblem(
      await api.http.post('/v1/verify').set(caller.auth).send({ key: caller.secret }),
      403,
      'FORBIDDEN',
    );
  });

  it('a scope only the account ceiling holds gives the key nothing', async () => {
    const t = await tenant('ceilingonly');
    const caller = await callerKey(t, ['tickets:read']);
    // The account may hold keyward:admin; this key does not.
    expectProblem(
      await api.http.post('/v1/service-accounts').set(caller.auth).send(newAccount()),
      403,
      'FORBIDDEN',
    );
  });

  it('a revoked key: 401', async () => {
    const t = await tenant('revokedkey');
    const caller = await callerKey(t, ['keyward:admin']);
    await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
    await api.http
      .post(`/v1/keys/${caller.keyId}/revoke`)
      .set(t.admin)
      .send({ reason: 'leaked' })
      .expect(200);
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 401, 'UNAUTHENTICATED');
    expectProblem(
      await api.http.post('/v1/service-accounts').set(caller.auth).send(newAccount()),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('a key may revoke itself, and is refused from that answer on', async () => {
    const t = await tenant('selfrevoke');
    const caller = await callerKey(t, ['keyward:admin']);
    await api.http
      .post(`/v1/keys/${caller.keyId}/revoke`)
      .set(caller.auth)
      .send({ reason: 'done' })
      .expect(200);
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 401, 'UNAUTHENTICATED');
  });

  it('an expired key: 401', async () => {
    const t = await tenant('expiredkey');
    const caller = await callerKey(t, ['keyward:read'], { expiresInDays: 1 });
    await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
    api.clock.advance(86_400_000);
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 401, 'UNAUTHENTICATED');
  });

  it('the old key of a rotation once its grace ends: 401, while the new one works', async () => {
    const t = await tenant('rotatedkey');
    const caller = await callerKey(t, ['keyward:read']);
    const rotated = await api.http
      .post(`/v1/keys/${caller.keyId}/rotate`)
      .set(t.admin)
      .send({ gracePeriodSeconds: 60 })
      .expect(201);
    await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
    api.clock.advance(60_000);
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 401, 'UNAUTHENTICATED');
    await api.http.get('/v1/service-accounts').set(bearer(rotated.body.secret)).expect(200);
  });

  it('a key of a disabled account: 401 until it is enabled', async () => {
    const t = await tenant('disabledkey');
    const caller = await callerKey(t, ['keyward:read']);
    await api.http.post(`/v1/service-accounts/${caller.accountId}/disable`).set(t.admin).send({}).expect(200);
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 401, 'UNAUTHENTICATED');
    await api.http.post(`/v1/service-accounts/${caller.accountId}/enable`).set(t.admin).send({}).expect(200);
    await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
  });

  it('losing a governance scope from the ceiling takes it from the key at once: 403', async () => {
    const t = await tenant('narrowedkey');
    // A ceiling without keyward:* or keyward:admin, which would still cover keyward:read.
    const caller = await callerKey(t, ['keyward:read', 'tickets:read'], {}, ['keyward:read', 'tickets:read']);
    await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
    await api.http
      .delete(`/v1/service-accounts/${caller.accountId}/scopes/keyward:read`)
      .set(t.admin)
      .send({})
      .expect(200);
    expectProblem(await api.http.get('/v1/service-accounts').set(caller.auth), 403, 'FORBIDDEN');
  });

  it('a mangled, unknown or truncated key: 401', async () => {
    const t = await tenant('mangledkey');
    const caller = await callerKey(t, ['keyward:admin']);
    const k = caller.secret;
    const body = k.slice(0, -6);
    const last = body[body.length - 1] === 'A' ? 'B' : 'A';
    const forged = `${body.slice(0, -1)}${last}`;
    for (const credential of [
      k.slice(0, -1),
      `${k.slice(0, -1)}${k.endsWith('A') ? 'B' : 'A'}`,
      `${forged}${checkOf(forged)}`, // a right checksum over a wrong secret
      issueKeySecret(caller.keyId, 'staging').secret,
      issueKeySecret('key_AAAAAAAAAAAAAAAAAAAA', 'staging').secret,
      'kw_stage_',
    ]) {
      expectProblem(
        await api.http.get('/v1/service-accounts').set(bearer(credential)),
        401,
        'UNAUTHENTICATED',
      );
    }
    await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
  });
});

describe('tenants', () => {
  it("a key sees only its own tenant: another tenant's account is 404, and absent from lists", async () => {
    const a = await tenant('callers-a');
    const b = await tenant('callers-b');
    const callerA = await callerKey(a, ['keyward:admin', 'tickets:read']);
    const callerB = await callerKey(b, ['keyward:admin']);
    const listA = await api.http.get('/v1/service-accounts').set(callerA.auth).expect(200);
    const idsA = listA.body.items.map((x: { id: string }) => x.id);
    expect(idsA).toContain(callerA.accountId);
    expect(idsA).not.toContain(callerB.accountId);
    expect(listA.body.items.every((x: { tenantId: string }) => x.tenantId === a.tenantId)).toBe(true);
    expectProblem(
      await api.http.get(`/v1/service-accounts/${callerB.accountId}`).set(callerA.auth),
      404,
      'NOT_FOUND',
    );
    expectProblem(await api.http.get(`/v1/keys/${callerB.keyId}`).set(callerA.auth), 404, 'NOT_FOUND');
    expectProblem(
      await api.http.post(`/v1/keys/${callerB.keyId}/revoke`).set(callerA.auth).send({}),
      404,
      'NOT_FOUND',
    );
    expectProblem(
      await api.http.post(`/v1/service-accounts/${callerB.accountId}/disable`).set(callerA.auth).send({}),
      404,
      'NOT_FOUND',
    );
    // B's key still works: nothing A tried reached it.
    await api.http.get(`/v1/service-accounts/${callerB.accountId}`).set(callerB.auth).expect(200);
    // What A creates lands in A.
    const created = await api.http
      .post('/v1/service-accounts')
      .set(callerA.auth)
      .send(newAccount())
      .expect(201);
    expect(created.body.tenantId).toBe(a.tenantId);
  });
});

it('the key used as a credential never reaches a log line', async () => {
  const t = await tenant('credlog');
  const caller = await callerKey(t, ['keyward:read']);
  await api.http.get('/v1/service-accounts').set(caller.auth).expect(200);
  await api.http.post('/v1/service-accounts').set(caller.auth).send(newAccount()).expect(403);
  await api.http
    .get('/v1/service-accounts')
    .set(bearer(`${caller.secret}x`))
    .expect(401);
  const logs = api.logs();
  expect(logs).toContain('/v1/service-accounts'); // the search does see the request log
  expect(logs.includes(caller.secret)).toBe(false);
  expect(logs.includes(caller.secret.slice(caller.secret.length - 39, caller.secret.length - 6))).toBe(false);
});
