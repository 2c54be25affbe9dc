import type Redis from 'ioredis';
import type { Response } from 'supertest';
import { closeRedis, createRedis } from '@keyward/redis';
import { UsageBuffer, UsageCounters, flushUsage } from '@keyward/usage';
import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * API.md "Gateway check": the verify decision for gateways, answered in status codes and headers,
 * for any method and with an appended path, counted as usage like POST /v1/verify.
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

let seq = 0;
async function setup(account: Record<string, unknown> = {}, key: Record<string, unknown> = {}) {
  seq += 1;
  const t = await createTenant(api, `gateway-${seq}`);
  const admin = bearer(t.admin);
  const created = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: `acct-${seq}`,
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['tickets:read', 'summaries:draft'],
      ...account,
    })
    .expect(201);
  const issue = async (extra: Record<string, unknown> = {}) =>
    (
      await api.http
        .post(`/v1/service-accounts/${created.body.id}/keys`)
        .set(admin)
        .send({ name: `key-${seq}`, scopes: ['tickets:read', 'summaries:draft'], ...key, ...extra })
        .expect(201)
    ).body as { id: string; secret: string };
  const issued = await issue();
  const gateway = { 'X-Keyward-Verifier': `Bearer ${await t.token('verifier')}` };
  return { t, admin, accountId: created.body.id as string, key: issued, issue, gateway };
}

function check(path: string, headers: Headers, method = 'get'): Promise<Response> {
  const req = (api.http as unknown as Record<string, (p: string) => { set(h: Headers): Promise<Response> }>)[
    method
  ](path);
  return req.set(headers);
}

function expectDenied(res: Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['x-keyward-code']).toBe(code);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.parse(res.text)).toMatchObject({ status, code });
  expect(res.headers['x-keyward-key-id']).toBeUndefined();
}

describe('a valid key', () => {
  it('answers 200 with an empty body and the identity headers, for every method', async () => {
    const s = await setup();
    for (const method of ['get', 'post', 'put', 'patch', 'delete', 'options', 'head']) {
      const res = await check('/v1/gateway/check', { ...s.gateway, 'X-Api-Key': s.key.secret }, method);
      expect(res.status).toBe(200);
      expect(res.text ?? '').toBe('');
      expect(res.headers).toMatchObject({
        'x-keyward-key-id': s.key.id,
        'x-keyward-account-id': s.accountId,
        'x-keyward-account-name': `acct-${seq}`,
        'x-keyward-environment': 'production',
        'x-keyward-tenant': s.t.tenantId,
        'x-keyward-scopes': 'summaries:draft tickets:read',
      });
    }
  });

  it('takes the key from Authorization: Bearer when there is no X-Api-Key, and X-Api-Key first', async () => {
    const s = await setup();
    const other = await s.issue({ scopes: ['tickets:read'] });
    const bearerOnly = await check('/v1/gateway/check', {
      ...s.gateway,
      Authorization: `Bearer ${s.key.secret}`,
    });
    expect(bearerOnly.status).toBe(200);
    expect(bearerOnly.headers['x-keyward-key-id']).toBe(s.key.id);
    const both = await check('/v1/gateway/check', {
      ...s.gateway,
      'X-Api-Key': other.secret,
      Authorization: `Bearer ${s.key.secret}`,
    });
    expect(both.headers['x-keyward-key-id']).toBe(other.id);
  });

  it('answers for an appended path (as Envoy sends it) the same way', async () => {
    const s = await setup();
    const res = await check('/v1/gateway/check/api/tickets/42', {
      ...s.gateway,
      'X-Api-Key': s.key.secret,
      'X-Keyward-Scope': 'tickets:read',
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-keyward-key-id']).toBe(s.key.id);
  });
});

describe('what to check', () => {
  it('reads scope, resource, environment from the query string, or else from headers', async () => {
    const s = await setup({ boundaries: ['site:plant-7'] }, { scopes: ['tickets:read'] });
    const auth = { ...s.gateway, 'X-Api-Key': s.key.secret };
    expect((await check('/v1/gateway/check?scope=tickets:read', auth)).status).toBe(200);
    expectDenied(await check('/v1/gateway/check?scope=summaries:draft', auth), 403, 'INSUFFICIENT_SCOPE');
    expectDenied(
      await check('/v1/gateway/check', { ...auth, 'X-Keyward-Scope': 'summaries:draft' }),
      403,
      'INSUFFICIENT_SCOPE',
    );
    // The query string wins over the header.
    expect(
      (await check('/v1/gateway/check?scope=tickets:read', { ...auth, 'X-Keyward-Scope': 'summaries:draft' }))
        .status,
    ).toBe(200);
    expect((await check('/v1/gateway/check?resource=site:plant-7/asset:1', auth)).status).toBe(200);
    expectDenied(
      await check('/v1/gateway/check', { ...auth, 'X-Keyward-Resource': 'site:plant-70/asset:1' }),
      403,
      'OUT_OF_BOUNDARY',
    );
    expectDenied(await check('/v1/gateway/check?environment=staging', auth), 403, 'ENVIRONMENT_MISMATCH');
    expectDenied(
      await check('/v1/gateway/check', { ...auth, 'X-Keyward-Environment': 'development' }),
      403,
      'ENVIRONMENT_MISMATCH',
    );
  });

  it("does not read the original request's query on an appended path: the caller cannot pick its scope", async () => {
    const s = await setup({}, { scopes: ['tickets:read'] });
    const res = await check('/v1/gateway/check/api/summaries?scope=tickets:read', {
      ...s.gateway,
      'X-Api-Key': s.key.secret,
      'X-Keyward-Scope': 'summaries:draft',
    });
    expectDenied(res, 403, 'INSUFFICIENT_SCOPE');
  });

  it('checks the source ip from the first X-Forwarded-For entry, else X-Real-IP; a malformed one is refused', async () => {
    const s = await setup({ allowedCidrs: ['10.20.0.0/16'] });
    const auth = { ...s.gateway, 'X-Api-Key': s.key.secret };
    expect(
      (await check('/v1/gateway/check', { ...auth, 'X-Forwarded-For': '10.20.1.7, 192.0.2.1' })).status,
    ).toBe(200);
    expectDenied(
      await check('/v1/gateway/check', { ...auth, 'X-Forwarded-For': '192.0.2.1, 10.20.1.7' }),
      403,
      'IP_NOT_ALLOWED',
    );
    expect((await check('/v1/gateway/check', { ...auth, 'X-Real-IP': '10.20.3.3' })).status).toBe(200);
    expectDenied(
      await check('/v1/gateway/check', { ...auth, 'X-Real-IP': '198.51.100.9' }),
      403,
      'IP_NOT_ALLOWED',
    );
    for (const ip of ['999.1.1.1', '10.20.0.1/33', 'not-an-ip']) {
      expectDenied(
        await check('/v1/gateway/check', { ...auth, 'X-Forwarded-For': ip }),
        403,
        'IP_NOT_ALLOWED',
      );
    }
  });

  it('refuses a malformed source ip even for a key without CIDRs', async () => {
    const s = await setup();
    expectDenied(
      await check('/v1/gateway/check', { ...s.gateway, 'X-Api-Key': s.key.secret, 'X-Real-IP': '999.1.1.1' }),
      403,
      'IP_NOT_ALLOWED',
    );
  });
});

describe('refusals', () => {
  it('answers 401 with WWW-Authenticate for a missing, malformed, unknown, revoked or expired key', async () => {
    const s = await setup();
    const unauthenticated = async (headers: Headers, code: string) => {
      const res = await check('/v1/gateway/check', { ...s.gateway, ...headers });
      expectDenied(res, 401, code);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    };
    await unauthenticated({}, 'MALFORMED');
    await unauthenticated({ 'X-Api-Key': 'kw_live_nope' }, 'MALFORMED');
    await unauthenticated(
      { 'X-Api-Key': s.key.secret.slice(0, -1) + (s.key.secret.endsWith('A') ? 'B' : 'A') },
      'MALFORMED',
    );
    const other = await setup();
    await unauthenticated({ 'X-Api-Key': other.key.secret }, 'UNKNOWN');

    await api.http.post(`/v1/keys/${s.key.id}/revoke`).set(s.admin).send({ reason: 'leaked' }).expect(200);
    await unauthenticated({ 'X-Api-Key': s.key.secret }, 'REVOKED');

    const soon = await s.issue({ expiresInDays: 1 });
    api.clock.advance(2 * 86_400_000);
    await unauthenticated({ 'X-Api-Key': soon.secret }, 'EXPIRED');
  });

  it("answers 401 ACCOUNT_DISABLED while the key's account is disabled", async () => {
    const s = await setup();
    await api.http.post(`/v1/service-accounts/${s.accountId}/disable`).set(s.admin).send({}).expect(200);
    expectDenied(
      await check('/v1/gateway/check', { ...s.gateway, 'X-Api-Key': s.key.secret }),
      401,
      'ACCOUNT_DISABLED',
    );
  });

  it('answers 429 with Retry-After once the rate limit is used up', async () => {
    const s = await setup({}, { rateLimit: { limit: 2, windowSeconds: 60 } });
    const auth = { ...s.gateway, 'X-Api-Key': s.key.secret };
    expect((await check('/v1/gateway/check', auth)).status).toBe(200);
    expect((await check('/v1/gateway/check', auth)).status).toBe(200);
    const limited = await check('/v1/gateway/check', auth);
    expectDenied(limited, 429, 'RATE_LIMITED');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });
});

describe("the gateway's own credential", () => {
  it('is 401 VERIFIER_UNAUTHENTICATED when missing or unknown, whatever the key', async () => {
    const s = await setup();
    for (const verifier of [
      undefined,
      'Bearer kwop_' + 'A'.repeat(43),
      'Basic abc',
      `Bearer ${s.key.secret}x`,
    ]) {
      const headers: Headers = { 'X-Api-Key': s.key.secret };
      if (verifier) headers['X-Keyward-Verifier'] = verifier;
      expectDenied(await check('/v1/gateway/check', headers), 401, 'VERIFIER_UNAUTHENTICATED');
    }
    // The caller's key in Authorization is not the gateway's credential.
    expectDenied(
      await check('/v1/gateway/check', { Authorization: `Bearer ${s.t.admin}`, 'X-Api-Key': s.key.secret }),
      401,
      'VERIFIER_UNAUTHENTICATED',
    );
  });

  it('is 403 VERIFIER_FORBIDDEN for a credential that may not verify', async () => {
    const s = await setup();
    for (const token of [await s.t.token('auditor'), BOOTSTRAP_TOKEN]) {
      expectDenied(
        await check('/v1/gateway/check', {
          'X-Keyward-Verifier': `Bearer ${token}`,
          'X-Api-Key': s.key.secret,
        }),
        403,
        'VERIFIER_FORBIDDEN',
      );
    }
  });
});

describe('usage and failure', () => {
  it('counts every check as usage, like POST /v1/verify', async () => {
    const s = await setup();
    const auth = { ...s.gateway, 'X-Api-Key': s.key.secret };
    await check('/v1/gateway/check?scope=tickets:read', auth).then((r) => expect(r.status).toBe(200));
    await check('/v1/gateway/check?scope=tickets:read', auth).then((r) => expect(r.status).toBe(200));
    await check('/v1/gateway/check?scope=billing:read', auth).then((r) => expect(r.status).toBe(403));
    await api.app.get(UsageBuffer).flush();
    await flushUsage(api.database.db, new UsageCounters(redis, api.config.redisPrefix));
    const usage = await api.http.get(`/v1/usage?keyId=${s.key.id}&granularity=day`).set(s.admin).expect(200);
    const used = (usage.body.items as { allowed: number; denied: number }[]).filter(
      (bucket) => bucket.allowed + bucket.denied > 0,
    );
    expect(used).toEqual([
      expect.objectContaining({ allowed: 2, denied: 1, deniedByCode: { INSUFFICIENT_SCOPE: 1 } }),
    ]);
  });

  it("counts a key refused as Keyward's own credential as what it was, not as an allowed use", async () => {
    const s = await setup();
    await api.http.post('/v1/verify').set(bearer(s.key.secret)).send({ key: s.key.secret }).expect(403);
    await api.app.get(UsageBuffer).flush();
    await flushUsage(api.database.db, new UsageCounters(redis, api.config.redisPrefix));
    const usage = await api.database.db
      .selectFrom('usage_minutes')
      .select(['code', 'count', 'system'])
      .where('key_id', '=', s.key.id)
      .execute();
    expect(usage).toEqual([{ code: 'INSUFFICIENT_SCOPE', count: '1', system: 'keyward-api' }]);
  });

  it('answers 503 (fail closed) when the store cannot be reached', async () => {
    const s = await setup();
    const down = await startTestApi({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/keyward' });
    try {
      const res = await down.http.get('/v1/gateway/check').set({ ...s.gateway, 'X-Api-Key': s.key.secret });
      expect(res.status).toBe(503);
      expect(res.headers['x-keyward-key-id']).toBeUndefined();
    } finally {
      await down.close();
    }
  });

  it('logs nothing per check below error, and counts each outcome on /metrics', async () => {
    const s = await setup();
    const before = api.logs().length;
    await check('/v1/gateway/check', { ...s.gateway, 'X-Api-Key': s.key.secret });
    await check('/v1/gateway/check', { ...s.gateway, 'X-Api-Key': 'kw_live_nope' });
    await api.http
      .post('/v1/verify')
      .set({ Authorization: s.gateway['X-Keyward-Verifier'] })
      .send({ key: s.key.secret })
      .expect(200);
    expect(api.logs().slice(before)).toBe('');
    const metrics = (await api.http.get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/keyward_verify_total\{code="VALID"\} \d+/);
    expect(metrics).toMatch(/keyward_verify_total\{code="MALFORMED"\} \d+/);
    expect(metrics).toMatch(/keyward_verify_duration_seconds_count \d+/);
  });
});
