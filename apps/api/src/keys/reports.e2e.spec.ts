import { sql } from 'kysely';
import {
  bearer,
  createTenant,
  newServerErrors,
  startTestApi,
  type TenantFixture,
  type TestApi,
} from '../../../../test/support/api';

/** API.md "Reports": GET /v1/reports/credentials, one row per live key, JSON or CSV. */
let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

async function account(t: TenantFixture, name: string, extra: object = {}): Promise<string> {
  const res = await api.http
    .post('/v1/service-accounts')
    .set(bearer(t.admin))
    .send({
      name,
      environment: 'production',
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['a:read', 'b:read'],
      ...extra,
    })
    .expect(201);
  return res.body.id;
}

async function key(
  t: TenantFixture,
  accountId: string,
  extra: object = {},
): Promise<{ id: string; prefix: string }> {
  const res = await api.http
    .post(`/v1/service-accounts/${accountId}/keys`)
    .set(bearer(t.admin))
    .send({ name: 'k', scopes: ['a:read'], ...extra })
    .expect(201);
  return res.body;
}

it('lists exactly the live keys with their account, owners and rotation due date', async () => {
  const t = await createTenant(api, 'rep-json');
  const rotated = await account(t, 'alpha', {
    rotationPolicy: { maxKeyAgeDays: 30, notifyBeforeDays: 5, autoRotate: false },
  });
  const live = await key(t, rotated);
  const revoked = await key(t, rotated);
  await api.http.post(`/v1/keys/${revoked.id}/revoke`).set(bearer(t.admin)).send({}).expect(200);
  const short = await key(t, rotated, { expiresInDays: 1 });
  const gone = await account(t, 'beta');
  await key(t, gone);
  await api.http.delete(`/v1/service-accounts/${gone}`).set(bearer(t.admin)).send({}).expect(200);

  const before = await api.http
    .get('/v1/reports/credentials')
    .set(bearer(await t.token('auditor')))
    .expect(200);
  expect(before.headers['content-type']).toMatch(/^application\/json/);
  expect(before.body.items.map((r: { keyId: string }) => r.keyId).sort()).toEqual([live.id, short.id].sort());
  expect(before.body.items.find((r: { keyId: string }) => r.keyId === live.id)).toEqual({
    serviceAccountId: rotated,
    serviceAccount: 'alpha',
    environment: 'production',
    businessOwner: 'ops',
    technicalOwner: 'platform',
    keyId: live.id,
    prefix: live.prefix,
    scopes: ['a:read'],
    createdAt: '2026-03-01T09:00:00.000Z',
    lastUsedAt: null,
    expiresAt: '2026-05-30T09:00:00.000Z',
    rotationDueAt: '2026-03-26T09:00:00.000Z',
    status: 'active',
  });

  api.clock.advance(2 * 24 * 3600 * 1000);
  const after = await api.http.get('/v1/reports/credentials').set(bearer(t.admin)).expect(200);
  expect(after.body.items.map((r: { keyId: string }) => r.keyId)).toEqual([live.id]);
  api.clock.set('2026-03-01T09:00:00.000Z');
});

it('answers CSV for Accept: text/csv, quoting and defusing spreadsheet formulas', async () => {
  const t = await createTenant(api, 'rep-csv');
  const id = await account(t, 'gamma', {
    businessOwner: '=HYPERLINK("http://evil")',
    technicalOwner: 'team, "platform"',
  });
  const k = await key(t, id, { scopes: ['a:read', 'b:read'] });
  const res = await api.http
    .get('/v1/reports/credentials')
    .set(bearer(t.admin))
    .set('Accept', 'text/csv')
    .expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/csv/);
  const lines = res.text.trimEnd().split('\r\n');
  expect(lines[0]).toBe(
    'serviceAccountId,serviceAccount,environment,businessOwner,technicalOwner,keyId,prefix,scopes,createdAt,lastUsedAt,expiresAt,rotationDueAt,status',
  );
  expect(lines).toHaveLength(2);
  expect(lines[1]).toBe(
    `${id},gamma,production,"'=HYPERLINK(""http://evil"")","team, ""platform""",${k.id},${k.prefix},a:read b:read,2026-03-01T09:00:00.000Z,,2026-05-30T09:00:00.000Z,,active`,
  );
});

it("shows only the caller's tenant", async () => {
  const a = await createTenant(api, 'rep-a');
  const b = await createTenant(api, 'rep-b');
  await key(b, await account(b, 'theirs'));
  const res = await api.http.get('/v1/reports/credentials').set(bearer(a.admin)).expect(200);
  expect(res.body).toEqual({ items: [] });
  await api.http
    .get('/v1/reports/credentials')
    .set(bearer(await a.token('verifier')))
    .expect(403);
});

it('streams ten thousand keys', async () => {
  const t = await createTenant(api, 'rep-many');
  const id = await account(t, 'many');
  // Rows straight into the read model: the report reads only it, and 10,000 issues through HTTP would take minutes.
  await sql`
    insert into keys (id, tenant_id, service_account_id, name, prefix, secret_hash, environment, scopes, boundaries,
                      allowed_cidrs, rate_limit, expires_at, created_at, updated_at, version)
    select 'key_' || lpad(g::text, 20, '0'), 'rep-many', ${id}, 'bulk', 'kw_live_' || lpad(g::text, 20, '0'),
           md5(g::text), 'production', '{a:read}', '{}', '{}', null,
           '2026-06-01T00:00:00Z', '2026-03-01T00:00:00Z', '2026-03-01T00:00:00Z', 1
    from generate_series(1, 10000) g`.execute(api.database.db);
  const res = await api.http
    .get('/v1/reports/credentials')
    .set(bearer(t.admin))
    .set('Accept', 'text/csv')
    .expect(200);
  expect(res.headers['transfer-encoding']).toBe('chunked');
  const lines = res.text.trimEnd().split('\r\n');
  expect(lines).toHaveLength(10_001);
  // Read in batches of 500 that all tie on account and creation time: none lost, none twice.
  const ids = new Set(lines.slice(1).map((line) => /key_\d{20}/.exec(line)?.[0]));
  expect(ids.size).toBe(10_000);
});
