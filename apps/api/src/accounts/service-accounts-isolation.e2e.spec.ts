import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  startTestApi,
  newServerErrors,
  type TestApi,
  eventCount,
  expectProblem,
} from '../../../../test/support/api';

/**
 * API.md "Callers and credentials": a caller sees only its own tenant (another tenant's account is
 * 404, exactly as a missing one), roles decide who may change what (403), and a missing, unknown
 * or deleted credential is 401.
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
type Method = 'get' | 'post' | 'patch' | 'delete';

interface Account {
  id: string;
  name: string;
  version: number;
  status: string;
  [field: string]: unknown;
}

async function createAccount(auth: Headers, overrides: Record<string, unknown> = {}): Promise<Account> {
  const res = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'isolated-account',
      environment: 'production',
      description: 'belongs to tenant A',
      businessOwner: 'owner-a',
      technicalOwner: 'tech-a',
      allowedScopes: ['tickets:read', 'billing:read'],
      ...overrides,
    });
  expect(res.status).toBe(201);
  return res.body as Account;
}

async function getAccount(auth: Headers, id: string): Promise<Account> {
  return (await api.http.get(`/v1/service-accounts/${id}`).set(auth).expect(200)).body as Account;
}

async function streamLength(id: string): Promise<number> {
  const rows = await api.database.db
    .selectFrom('events')
    .select('event_id')
    .where('stream_id', '=', id)
    .execute();
  return rows.length;
}

/** Two tenants, A holding an account; `bAuth` is tenant B's admin. */
async function twoTenants(label: string, overrides: Record<string, unknown> = {}) {
  const a = await createTenant(api, `iso-${label}-a`);
  const b = await createTenant(api, `iso-${label}-b`);
  const aAuth = bearer(a.admin);
  const bAuth = bearer(b.admin);
  const account = await createAccount(aAuth, overrides);
  return { a, b, aAuth, bAuth, account };
}

describe("tenant isolation: another tenant's account is 404 on every route, and stays untouched", () => {
  const routes: [string, Method, (id: string) => string, Record<string, unknown> | undefined][] = [
    ['GET', 'get', (id) => `/v1/service-accounts/${id}`, undefined],
    [
      'PATCH',
      'patch',
      (id) => `/v1/service-accounts/${id}`,
      { description: 'hijacked', businessOwner: 'mallory' },
    ],
    ['disable', 'post', (id) => `/v1/service-accounts/${id}/disable`, { reason: 'cross-tenant' }],
    ['enable', 'post', (id) => `/v1/service-accounts/${id}/enable`, { reason: 'cross-tenant' }],
    ['DELETE', 'delete', (id) => `/v1/service-accounts/${id}`, { reason: 'cross-tenant' }],
    ['grant scopes', 'post', (id) => `/v1/service-accounts/${id}/scopes`, { scopes: ['admin:write'] }],
    ['narrow a scope', 'delete', (id) => `/v1/service-accounts/${id}/scopes/tickets%3Aread`, {}],
  ];

  it.each(routes)('%s', async (label, method, path, body) => {
    const { aAuth, bAuth, account: created } = await twoTenants(label.toLowerCase().replace(/ /g, '-'));
    // For enable, A's account is disabled first, so that the call would succeed for A itself.
    let account = created;
    if (label === 'enable') {
      account = (
        await api.http.post(`/v1/service-accounts/${created.id}/disable`).set(aAuth).send({}).expect(200)
      ).body as Account;
    }
    const events = await eventCount(api);

    let request = api.http[method](path(account.id)).set(bAuth);
    const res = body === undefined ? await request : await request.send(body);
    expectProblem(res, 404, 'NOT_FOUND');

    // Exactly as a missing account of B's own would answer.
    const missing = 'sa_ZZZZZZZZZZZZZZZZZZZZ';
    request = api.http[method](path(missing)).set(bAuth);
    const control = body === undefined ? await request : await request.send(body);
    expectProblem(control, 404, 'NOT_FOUND');
    expect({ ...res.body, detail: undefined }).toEqual({ ...control.body, detail: undefined });
    expect(res.body.detail).toBe(control.body.detail.replace(missing, account.id));

    expect(await eventCount(api)).toBe(events);
    expect(await getAccount(aAuth, account.id)).toEqual(account);
  });

  it("is absent from B's list, whatever the filters, and present in A's", async () => {
    const { aAuth, bAuth, account } = await twoTenants('list');
    await createAccount(bAuth, { name: 'b-own-account', description: 'belongs to tenant B' });
    const queries = [
      '',
      '?q=isolated',
      '?owner=owner-a',
      '?environment=production',
      '?status=active',
      '?limit=200',
    ];
    for (const query of queries) {
      const res = await api.http.get(`/v1/service-accounts${query}`).set(bAuth).expect(200);
      const ids = (res.body.items as Account[]).map((a) => a.id);
      expect([query, ids.includes(account.id)]).toEqual([query, false]);
      for (const item of res.body.items as Account[]) expect(item.tenantId).toBe('iso-list-b');
    }
    const deleted = await createAccount(aAuth, { name: 'a-deleted' });
    await api.http.delete(`/v1/service-accounts/${deleted.id}`).set(aAuth).send({}).expect(200);
    const gone = await api.http.get('/v1/service-accounts?status=deleted').set(bAuth).expect(200);
    expect(gone.body.items).toEqual([]);

    const own = await api.http.get('/v1/service-accounts?q=isolated').set(aAuth).expect(200);
    expect((own.body.items as Account[]).map((a) => a.id)).toEqual([account.id]);
  });

  it("is 404 for B's read-only roles too", async () => {
    const { b, account } = await twoTenants('roles');
    for (const role of ['auditor', 'approver'] as const) {
      const res = await api.http.get(`/v1/service-accounts/${account.id}`).set(bearer(await b.token(role)));
      expectProblem(res, 404, 'NOT_FOUND');
    }
  });

  it("does not let B's cursor reveal A's accounts", async () => {
    const { aAuth, bAuth } = await twoTenants('cursor');
    await createAccount(aAuth, { name: 'a-second' });
    await createAccount(aAuth, { name: 'a-third' });
    const page = await api.http.get('/v1/service-accounts?limit=1').set(aAuth).expect(200);
    expect(page.body.nextCursor).toEqual(expect.any(String));
    const res = await api.http
      .get(`/v1/service-accounts?cursor=${encodeURIComponent(page.body.nextCursor)}`)
      .set(bAuth)
      .expect(200);
    expect(res.body.items).toEqual([]);
  });

  it('lets each tenant hold and change its own account of the same name independently', async () => {
    const { bAuth, aAuth, account } = await twoTenants('same-name');
    const bAccount = await createAccount(bAuth);
    expect(bAccount.name).toBe(account.name);
    await api.http.post(`/v1/service-accounts/${bAccount.id}/disable`).set(bAuth).send({}).expect(200);
    expect((await getAccount(aAuth, account.id)).status).toBe('active');
    expect((await getAccount(bAuth, bAccount.id)).status).toBe('disabled');
  });
});

describe('roles', () => {
  /** Every change route, for an account `id` holding tickets:read. */
  const changes: [string, Method, (id: string) => string, Record<string, unknown>][] = [
    [
      'POST /v1/service-accounts',
      'post',
      () => '/v1/service-accounts',
      {
        name: 'forbidden-create',
        environment: 'staging',
        businessOwner: 'x',
        technicalOwner: 'y',
      },
    ],
    ['PATCH', 'patch', (id) => `/v1/service-accounts/${id}`, { description: 'changed' }],
    ['disable', 'post', (id) => `/v1/service-accounts/${id}/disable`, { reason: 'r' }],
    ['enable', 'post', (id) => `/v1/service-accounts/${id}/enable`, { reason: 'r' }],
    ['DELETE', 'delete', (id) => `/v1/service-accounts/${id}`, { reason: 'r' }],
    ['grant scopes', 'post', (id) => `/v1/service-accounts/${id}/scopes`, { scopes: ['billing:write'] }],
    ['narrow a scope', 'delete', (id) => `/v1/service-accounts/${id}/scopes/tickets%3Aread`, {}],
  ];
  const reads: [string, (id: string) => string][] = [
    ['list', () => '/v1/service-accounts'],
    ['get', (id) => `/v1/service-accounts/${id}`],
  ];

  it.each(['auditor', 'approver'] as const)(
    '%s may read but answers 403 FORBIDDEN to every change',
    async (role) => {
      const t = await createTenant(api, `roles-${role}`);
      const admin = bearer(t.admin);
      const account = await createAccount(admin);
      const auth = bearer(await t.token(role));

      const list = await api.http.get('/v1/service-accounts').set(auth).expect(200);
      expect((list.body.items as Account[]).map((a) => a.id)).toEqual([account.id]);
      const got = await api.http.get(`/v1/service-accounts/${account.id}`).set(auth).expect(200);
      expect(got.body).toEqual(account);
      expect(got.headers.etag).toBe('"1"');

      const events = await eventCount(api);
      for (const [label, method, path, body] of changes) {
        const res = await api.http[method](path(account.id)).set(auth).send(body);
        expect([label, res.status]).toEqual([label, 403]);
        expectProblem(res, 403, 'FORBIDDEN');
      }
      expect(await eventCount(api)).toBe(events);
      expect(await getAccount(admin, account.id)).toEqual(account);
      const all = await api.http.get('/v1/service-accounts').set(admin).expect(200);
      expect(all.body.items).toHaveLength(1);
    },
  );

  it('answers 403 to a verifier even for reads', async () => {
    const t = await createTenant(api, 'roles-verifier');
    const account = await createAccount(bearer(t.admin));
    const auth = bearer(await t.token('verifier'));
    const events = await eventCount(api);
    for (const [label, path] of reads) {
      const res = await api.http.get(path(account.id)).set(auth);
      expect([label, res.status]).toEqual([label, 403]);
      expectProblem(res, 403, 'FORBIDDEN');
    }
    for (const [label, method, path, body] of changes) {
      const res = await api.http[method](path(account.id)).set(auth).send(body);
      expect([label, res.status]).toEqual([label, 403]);
      expectProblem(res, 403, 'FORBIDDEN');
    }
    expect(await eventCount(api)).toBe(events);
  });

  it('answers 403 to the bootstrap token on every service-account route', async () => {
    const t = await createTenant(api, 'roles-bootstrap');
    const account = await createAccount(bearer(t.admin));
    const auth = bearer(BOOTSTRAP_TOKEN);
    const events = await eventCount(api);
    for (const [label, path] of reads) {
      const res = await api.http.get(path(account.id)).set(auth);
      expect([label, res.status]).toEqual([label, 403]);
      expectProblem(res, 403, 'FORBIDDEN');
    }
    for (const [label, method, path, body] of changes) {
      const res = await api.http[method](path(account.id)).set(auth).send(body);
      expect([label, res.status]).toEqual([label, 403]);
      expectProblem(res, 403, 'FORBIDDEN');
    }
    expect(await eventCount(api)).toBe(events);
    expect(await getAccount(bearer(t.admin), account.id)).toEqual(account);
  });

  it('lets a second admin of the tenant change the account', async () => {
    const t = await createTenant(api, 'roles-admin');
    const account = await createAccount(bearer(t.admin));
    const other = bearer(await t.token('admin'));
    const res = await api.http
      .post(`/v1/service-accounts/${account.id}/disable`)
      .set(other)
      .send({})
      .expect(200);
    expect(res.body.status).toBe('disabled');
  });
});

describe('credentials', () => {
  const everyRoute = (id: string): [string, Method, string, Record<string, unknown> | undefined][] => [
    ['list', 'get', '/v1/service-accounts', undefined],
    ['get', 'get', `/v1/service-accounts/${id}`, undefined],
    [
      'create',
      'post',
      '/v1/service-accounts',
      { name: 'anon', environment: 'staging', businessOwner: 'x', technicalOwner: 'y' },
    ],
    ['patch', 'patch', `/v1/service-accounts/${id}`, { description: 'anon' }],
    ['disable', 'post', `/v1/service-accounts/${id}/disable`, {}],
    ['enable', 'post', `/v1/service-accounts/${id}/enable`, {}],
    ['delete', 'delete', `/v1/service-accounts/${id}`, {}],
    ['grant', 'post', `/v1/service-accounts/${id}/scopes`, { scopes: ['a:b'] }],
    ['narrow', 'delete', `/v1/service-accounts/${id}/scopes/tickets%3Aread`, undefined],
  ];

  it.each<[string, Headers]>([
    ['no Authorization', {}],
    ['Bearer garbage', { Authorization: 'Bearer garbage' }],
    ['an empty bearer', { Authorization: 'Bearer ' }],
    ['another scheme', { Authorization: 'Basic YWRtaW46YWRtaW4=' }],
    ['a made-up operator token', { Authorization: `Bearer kwop_${'A'.repeat(43)}` }],
  ])('answers 401 UNAUTHENTICATED to %s on every route', async (label, auth) => {
    const t = await createTenant(api, `cred-${label.toLowerCase().replace(/[^a-z]+/g, '-')}`);
    const account = await createAccount(bearer(t.admin));
    const events = await eventCount(api);
    for (const [route, method, path, body] of everyRoute(account.id)) {
      const request = api.http[method](path).set(auth);
      const res = body === undefined ? await request : await request.send(body);
      expect([route, res.status]).toEqual([route, 401]);
      expectProblem(res, 401, 'UNAUTHENTICATED');
    }
    expect(await eventCount(api)).toBe(events);
  });

  it("answers 401 to a deleted operator's token, which worked before", async () => {
    const t = await createTenant(api, 'cred-deleted-operator');
    const admin = bearer(t.admin);
    const created = await api.http
      .post('/v1/operators')
      .set(admin)
      .send({ name: 'leaving-admin', role: 'admin' })
      .expect(201);
    const leaving = bearer(created.body.token as string);
    const account = await createAccount(leaving);
    await api.http.get(`/v1/service-accounts/${account.id}`).set(leaving).expect(200);

    await api.http
      .delete(`/v1/operators/${created.body.id}`)
      .set(admin)
      .send({ reason: 'left the company' })
      .expect(200);

    const events = await eventCount(api);
    for (const [route, method, path, body] of everyRoute(account.id)) {
      const request = api.http[method](path).set(leaving);
      const res = body === undefined ? await request : await request.send(body);
      expect([route, res.status]).toEqual([route, 401]);
      expectProblem(res, 401, 'UNAUTHENTICATED');
    }
    expect(await eventCount(api)).toBe(events);
    // The account the operator made stays, and the remaining admin still reaches it.
    expect(await getAccount(admin, account.id)).toEqual(account);
    expect(await streamLength(account.id)).toBe(1);
  });

  it('never echoes the credential in an error', async () => {
    const t = await createTenant(api, 'cred-echo');
    const token = await t.token('verifier');
    const denied = await api.http.get('/v1/service-accounts').set(bearer(token));
    expectProblem(denied, 403, 'FORBIDDEN');
    expect(JSON.stringify(denied.body)).not.toContain(token);
    const garbage = `kwop_${'B'.repeat(43)}`;
    const unknown = await api.http.get('/v1/service-accounts').set(bearer(garbage));
    expectProblem(unknown, 401, 'UNAUTHENTICATED');
    expect(JSON.stringify(unknown.body)).not.toContain(garbage);
    expect(api.logs()).not.toContain(token);
    expect(api.logs()).not.toContain(garbage);
  });
});
