import type { Response } from 'supertest';
import {
  bearer,
  createTenant,
  startTestApi,
  type TestApi,
  newServerErrors,
  eventCount,
  expectProblem,
} from '../../../../test/support/api';

/** API.md "Service accounts": create, read, list, change, lifecycle and scopes, through the real HTTP app. */

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ACCOUNT_ID = /^sa_[0-9A-Za-z]{20}$/;

let api: TestApi;

beforeAll(async () => {
  // The secretDelivery URLs here (API.md's vault-adapter.internal) are internal hosts: the webhook
  // address policy refuses them unless private addresses are allowed. That policy is tested in
  // service-accounts-secret-delivery.e2e.spec.ts.
  api = await startTestApi({ KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' });
});
afterAll(async () => {
  await api?.close();
});

afterEach(() => expect(newServerErrors(api)).toEqual([]));

type Headers = Record<string, string>;

interface StoredEvent {
  type: string;
  tenant_id: string;
  stream_version: string;
  data: Record<string, unknown>;
  metadata: {
    actor: { type: string; id: string; name: string };
    reason: string | null;
    correlationId: string;
  };
}

let nameSeq = 0;
function uniqueName(base = 'acct'): string {
  nameSeq += 1;
  return `${base}-${nameSeq}`;
}

function accountBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: uniqueName(),
    environment: 'staging',
    businessOwner: 'support-ops',
    technicalOwner: 'ai-platform',
    ...overrides,
  };
}

async function createAccount(auth: Headers, overrides: Record<string, unknown> = {}) {
  const res = await api.http.post('/v1/service-accounts').set(auth).send(accountBody(overrides));
  expect(res.status).toBe(201);
  return res.body as Record<string, unknown> & { id: string; name: string; version: number };
}

async function getAccount(auth: Headers, id: string) {
  const res = await api.http.get(`/v1/service-accounts/${id}`).set(auth).expect(200);
  return res.body as Record<string, unknown> & { id: string; version: number; status: string };
}

async function eventsOf(streamId: string): Promise<StoredEvent[]> {
  const rows = await api.database.db
    .selectFrom('events')
    .select(['type', 'tenant_id', 'stream_version', 'data', 'metadata'])
    .where('stream_id', '=', streamId)
    .orderBy('stream_version')
    .execute();
  return rows as unknown as StoredEvent[];
}

async function tenant(id: string) {
  const fixture = await createTenant(api, id);
  return { ...fixture, auth: bearer(fixture.admin) };
}

/** The admin operator createTenant made (named `admin-<tenant>`). */
async function adminOperator(auth: Headers, tenantId: string): Promise<{ id: string; name: string }> {
  const res = await api.http.get('/v1/operators').set(auth).expect(200);
  const operator = (res.body.items as { id: string; name: string }[]).find(
    (o) => o.name === `admin-${tenantId}`,
  );
  expect(operator).toBeDefined();
  return operator!;
}

const EXAMPLE = {
  name: 'nightly-digest-summariser',
  environment: 'production',
  description: "Summarises yesterday's tickets",
  intendedScope: 'Reads tickets; drafts summaries',
  businessOwner: 'support-ops',
  technicalOwner: 'ai-platform',
  allowedScopes: ['tickets:read', 'summaries:draft'],
  boundaries: ['site:plant-7'],
  abuseDetection: true,
  allowedCidrs: ['10.20.0.0/16'],
  rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: false },
  secretDelivery: { url: 'https://vault-adapter.internal/keys' },
};

describe('POST /v1/service-accounts', () => {
  it("accepts API.md's example and answers 201 with the whole account, its ETag and Location", async () => {
    const { auth, tenantId } = await tenant('sa-create-example');
    const res = await api.http.post('/v1/service-accounts').set(auth).send(EXAMPLE);

    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const now = api.clock.now().toISOString();
    expect(res.body).toMatchObject({
      tenantId,
      name: 'nightly-digest-summariser',
      environment: 'production',
      description: "Summarises yesterday's tickets",
      intendedScope: 'Reads tickets; drafts summaries',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      // The ceiling is kept as a sorted set.
      allowedScopes: ['summaries:draft', 'tickets:read'],
      boundaries: ['site:plant-7'],
      allowedCidrs: ['10.20.0.0/16'],
      abuseDetection: true,
      rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: false },
      status: 'active',
      activeKeyCount: 0,
      createdAt: now,
      updatedAt: now,
      firstSeenAt: null,
      lastSeenAt: null,
      version: 1,
    });
    expect(res.body.id).toMatch(ACCOUNT_ID);
    expect(res.body.createdAt).toMatch(ISO_MS);
    expect(res.body.updatedAt).toMatch(ISO_MS);
    expect(res.body.secretDelivery).toMatchObject({ url: 'https://vault-adapter.internal/keys' });
    expect(res.headers.etag).toBe('"1"');
    expect(res.headers.location).toBe(`/v1/service-accounts/${res.body.id}`);

    // The Location answers the same account.
    const fetched = await api.http.get(res.headers.location).set(auth).expect(200);
    expect(fetched.headers.etag).toBe('"1"');
    const { secretDelivery: _created, ...createdRest } = res.body;
    const { secretDelivery: _fetched, ...fetchedRest } = fetched.body;
    expect(fetchedRest).toEqual(createdRest);
    expect(fetched.body.secretDelivery.url).toBe('https://vault-adapter.internal/keys');
  });

  it('fills the documented defaults for a minimal account', async () => {
    const { auth } = await tenant('sa-create-minimal');
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .send({ name: 'min', environment: 'development', businessOwner: 'biz', technicalOwner: 'tech' })
      .expect(201);
    expect(res.body).toMatchObject({
      name: 'min',
      environment: 'development',
      description: null,
      intendedScope: null,
      businessOwner: 'biz',
      technicalOwner: 'tech',
      allowedScopes: [],
      boundaries: [],
      allowedCidrs: [],
      abuseDetection: true,
      rotationPolicy: null,
      status: 'active',
      activeKeyCount: 0,
      firstSeenAt: null,
      lastSeenAt: null,
      version: 1,
    });
  });

  it('normalizes scopes, boundaries and CIDRs to sorted sets without duplicates', async () => {
    const { auth } = await tenant('sa-create-sets');
    const account = await createAccount(auth, {
      allowedScopes: ['tickets:read', 'billing:read', 'tickets:read', 'product:*'],
      boundaries: ['site:b', 'site:a', 'site:b'],
      allowedCidrs: ['10.0.0.0/8', '192.168.0.0/16', '10.0.0.0/8'],
    });
    expect(account.allowedScopes).toEqual(['billing:read', 'product:*', 'tickets:read']);
    expect(account.boundaries).toEqual(['site:a', 'site:b']);
    expect(account.allowedCidrs).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
  });

  it('stores one ServiceAccountCreated event with the actor and the correlation id of the answer', async () => {
    const { auth, tenantId } = await tenant('sa-create-event');
    const operator = await adminOperator(auth, tenantId);
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .send({ ...EXAMPLE, reason: 'new digest job' })
      .expect(201);
    const correlationId = res.headers['x-correlation-id'];
    expect(correlationId).toEqual(expect.any(String));

    const events = await eventsOf(res.body.id);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event.type).toBe('ServiceAccountCreated');
    expect(event.tenant_id).toBe(tenantId);
    expect(Number(event.stream_version)).toBe(1);
    expect(event.data).toMatchObject({
      id: res.body.id,
      tenantId,
      name: EXAMPLE.name,
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      boundaries: ['site:plant-7'],
      allowedCidrs: ['10.20.0.0/16'],
      rotationPolicy: EXAMPLE.rotationPolicy,
    });
    expect(event.metadata.actor).toEqual({ type: 'operator', id: operator.id, name: operator.name });
    expect(event.metadata.correlationId).toBe(correlationId);
    expect(event.metadata.reason).toBe('new digest job');
  });

  it("keeps the caller's X-Correlation-Id, echoes it and stores it with the event", async () => {
    const { auth } = await tenant('sa-create-corr');
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .set('X-Correlation-Id', 'change-4711.create')
      .send(accountBody())
      .expect(201);
    expect(res.headers['x-correlation-id']).toBe('change-4711.create');
    const [event] = await eventsOf(res.body.id);
    expect(event.metadata.correlationId).toBe('change-4711.create');
  });

  it('replaces a malformed X-Correlation-Id with one of its own', async () => {
    const { auth } = await tenant('sa-create-corr-bad');
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .set('X-Correlation-Id', 'not a valid id <script>')
      .send(accountBody())
      .expect(201);
    const correlationId = res.headers['x-correlation-id'];
    expect(correlationId).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    const [event] = await eventsOf(res.body.id);
    expect(event.metadata.correlationId).toBe(correlationId);
  });
});

describe('unique names per tenant and environment', () => {
  it('answers 409 CONFLICT for a name taken in the same environment, and writes nothing', async () => {
    const { auth } = await tenant('sa-dup-same');
    await createAccount(auth, { name: 'dup-name', environment: 'production' });
    const before = await eventCount(api);
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .send(accountBody({ name: 'dup-name', environment: 'production' }));
    expectProblem(res, 409, 'CONFLICT');
    expect(await eventCount(api)).toBe(before);
    const list = await api.http.get('/v1/service-accounts?q=dup-name').set(auth).expect(200);
    expect(list.body.items).toHaveLength(1);
  });

  it('allows the same name in another environment', async () => {
    const { auth } = await tenant('sa-dup-env');
    const prod = await createAccount(auth, { name: 'shared-name', environment: 'production' });
    const staging = await createAccount(auth, { name: 'shared-name', environment: 'staging' });
    const dev = await createAccount(auth, { name: 'shared-name', environment: 'development' });
    expect(new Set([prod.id, staging.id, dev.id]).size).toBe(3);
  });

  it('allows the same name in another tenant', async () => {
    const a = await tenant('sa-dup-tenant-a');
    const b = await tenant('sa-dup-tenant-b');
    const inA = await createAccount(a.auth, { name: 'same-everywhere', environment: 'production' });
    const inB = await createAccount(b.auth, { name: 'same-everywhere', environment: 'production' });
    expect(inA.tenantId).toBe('sa-dup-tenant-a');
    expect(inB.tenantId).toBe('sa-dup-tenant-b');
  });

  it('frees the name once the account is deleted, and keeps the deleted one', async () => {
    const { auth } = await tenant('sa-dup-reuse');
    const old = await createAccount(auth, { name: 'reusable', environment: 'production' });
    await api.http.delete(`/v1/service-accounts/${old.id}`).set(auth).send({ reason: 'retired' }).expect(200);
    const reborn = await createAccount(auth, { name: 'reusable', environment: 'production' });
    expect(reborn.id).not.toBe(old.id);
    expect((await getAccount(auth, old.id)).status).toBe('deleted');
    expect((await getAccount(auth, reborn.id)).status).toBe('active');
  });

  it('answers 409 for a rename onto a taken name, and changes nothing', async () => {
    const { auth } = await tenant('sa-dup-rename');
    await createAccount(auth, { name: 'taken', environment: 'staging' });
    const other = await createAccount(auth, { name: 'free', environment: 'staging' });
    const res = await api.http.patch(`/v1/service-accounts/${other.id}`).set(auth).send({ name: 'taken' });
    expectProblem(res, 409, 'CONFLICT');
    const after = await getAccount(auth, other.id);
    expect(after).toMatchObject({ name: 'free', version: 1 });
    expect(await eventsOf(other.id)).toHaveLength(1);
  });

  it('allows a rename onto a name taken in another environment or only by a deleted account', async () => {
    const { auth } = await tenant('sa-dup-rename-ok');
    await createAccount(auth, { name: 'elsewhere', environment: 'production' });
    const gone = await createAccount(auth, { name: 'gone', environment: 'staging' });
    await api.http.delete(`/v1/service-accounts/${gone.id}`).set(auth).send({}).expect(200);
    const account = await createAccount(auth, { name: 'movable', environment: 'staging' });
    const first = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({ name: 'elsewhere' });
    expect(first.status).toBe(200);
    expect(first.body.name).toBe('elsewhere');
    const second = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({ name: 'gone' });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ name: 'gone', version: 3 });
  });

  it('creates exactly one of five racing creates of one name', async () => {
    const { auth } = await tenant('sa-dup-race');
    const body = accountBody({ name: 'raced-name', environment: 'production' });
    const results = await Promise.all(
      Array.from({ length: 5 }, () => api.http.post('/v1/service-accounts').set(auth).send(body)),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409]);
    for (const res of results.filter((r) => r.status === 409)) expectProblem(res, 409, 'CONFLICT');

    const list = await api.http.get('/v1/service-accounts?q=raced-name').set(auth).expect(200);
    expect(list.body.items).toHaveLength(1);
    const created = await api.database.db
      .selectFrom('events')
      .select('stream_id')
      .where('tenant_id', '=', 'sa-dup-race')
      .where('type', '=', 'ServiceAccountCreated')
      .execute();
    expect(created).toHaveLength(1);
    expect(created[0].stream_id).toBe(results.find((r) => r.status === 201)!.body.id);
  });
});

describe('GET /v1/service-accounts/{id}', () => {
  it('answers the account with its version as ETag', async () => {
    const { auth } = await tenant('sa-get');
    const account = await createAccount(auth, { description: 'read me' });
    const res = await api.http.get(`/v1/service-accounts/${account.id}`).set(auth).expect(200);
    expect(res.headers.etag).toBe('"1"');
    expect(res.body).toMatchObject({
      id: account.id,
      name: account.name,
      description: 'read me',
      version: 1,
    });
  });

  it.each([
    ['an unknown well-formed id', 'sa_AAAAAAAAAAAAAAAAAAAA'],
    ['a malformed id', 'not-an-id'],
    ['an id of another kind', 'op_AAAAAAAAAAAAAAAAAAAA'],
    ['an id with SQL in it', "sa_x'%20or%20'1'='1"],
  ])('answers 404 NOT_FOUND for %s', async (label, id) => {
    const { auth } = await tenant(`sa-get-404-${label.replace(/[^a-z]+/g, '-')}`);
    const res = await api.http.get(`/v1/service-accounts/${id}`).set(auth);
    expectProblem(res, 404, 'NOT_FOUND');
  });
});

describe('GET /v1/service-accounts', () => {
  interface Listed {
    id: string;
    name: string;
  }
  const names = (res: Response) => (res.body.items as Listed[]).map((a) => a.name).sort();

  it('lists the tenant accounts in the documented page shape, without deleted ones by default', async () => {
    const { auth } = await tenant('sa-list-default');
    const active = await createAccount(auth, { name: 'list-active' });
    const disabled = await createAccount(auth, { name: 'list-disabled' });
    const deleted = await createAccount(auth, { name: 'list-deleted' });
    await api.http.post(`/v1/service-accounts/${disabled.id}/disable`).set(auth).send({}).expect(200);
    await api.http.delete(`/v1/service-accounts/${deleted.id}`).set(auth).send({}).expect(200);

    const res = await api.http.get('/v1/service-accounts').set(auth).expect(200);
    expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
    expect(res.body.nextCursor).toBeNull();
    expect(names(res)).toEqual(['list-active', 'list-disabled']);
    const listed = (res.body.items as Listed[]).find((a) => a.id === active.id);
    expect(listed).toMatchObject({ id: active.id, status: 'active', version: 1, activeKeyCount: 0 });
  });

  it('filters by status; deleted accounts only with status=deleted', async () => {
    const { auth } = await tenant('sa-list-status');
    await createAccount(auth, { name: 'st-active' });
    const disabled = await createAccount(auth, { name: 'st-disabled' });
    const deleted = await createAccount(auth, { name: 'st-deleted' });
    await api.http.post(`/v1/service-accounts/${disabled.id}/disable`).set(auth).send({}).expect(200);
    await api.http.delete(`/v1/service-accounts/${deleted.id}`).set(auth).send({}).expect(200);

    expect(names(await api.http.get('/v1/service-accounts?status=active').set(auth).expect(200))).toEqual([
      'st-active',
    ]);
    expect(names(await api.http.get('/v1/service-accounts?status=disabled').set(auth).expect(200))).toEqual([
      'st-disabled',
    ]);
    const gone = await api.http.get('/v1/service-accounts?status=deleted').set(auth).expect(200);
    expect(names(gone)).toEqual(['st-deleted']);
    expect(gone.body.items[0].status).toBe('deleted');
  });

  it('filters by environment', async () => {
    const { auth } = await tenant('sa-list-env');
    await createAccount(auth, { name: 'env-prod', environment: 'production' });
    await createAccount(auth, { name: 'env-stage', environment: 'staging' });
    await createAccount(auth, { name: 'env-dev', environment: 'development' });
    expect(
      names(await api.http.get('/v1/service-accounts?environment=production').set(auth).expect(200)),
    ).toEqual(['env-prod']);
    expect(
      names(await api.http.get('/v1/service-accounts?environment=staging').set(auth).expect(200)),
    ).toEqual(['env-stage']);
    expect(
      names(await api.http.get('/v1/service-accounts?environment=development').set(auth).expect(200)),
    ).toEqual(['env-dev']);
  });

  it('filters by owner, business or technical, matching the whole owner', async () => {
    const { auth } = await tenant('sa-list-owner');
    await createAccount(auth, { name: 'own-biz', businessOwner: 'team-red', technicalOwner: 'team-blue' });
    await createAccount(auth, { name: 'own-tech', businessOwner: 'team-green', technicalOwner: 'team-red' });
    await createAccount(auth, { name: 'own-none', businessOwner: 'team-green', technicalOwner: 'team-blue' });
    await createAccount(auth, {
      name: 'own-prefix',
      businessOwner: 'team-redder',
      technicalOwner: 'team-blue',
    });
    expect(names(await api.http.get('/v1/service-accounts?owner=team-red').set(auth).expect(200))).toEqual([
      'own-biz',
      'own-tech',
    ]);
    expect(names(await api.http.get('/v1/service-accounts?owner=team-green').set(auth).expect(200))).toEqual([
      'own-none',
      'own-tech',
    ]);
    expect(names(await api.http.get('/v1/service-accounts?owner=nobody').set(auth).expect(200))).toEqual([]);
  });

  it('searches q case-insensitively in name, description and intended scope', async () => {
    const { auth } = await tenant('sa-list-q');
    await createAccount(auth, { name: 'invoice-printer' });
    await createAccount(auth, { name: 'q-desc', description: 'Sends INVOICES to customers' });
    await createAccount(auth, { name: 'q-scope', intendedScope: 'reads Invoice totals' });
    await createAccount(auth, { name: 'q-other', description: 'unrelated', intendedScope: 'nothing' });
    const res = await api.http.get('/v1/service-accounts?q=InVoIcE').set(auth).expect(200);
    expect(names(res)).toEqual(['invoice-printer', 'q-desc', 'q-scope']);
  });

  it('treats % and _ in q literally', async () => {
    const { auth } = await tenant('sa-list-q-literal');
    await createAccount(auth, { name: 'pct-yes', description: 'coverage at 100% today' });
    await createAccount(auth, { name: 'pct-no', description: 'coverage at 100 today' });
    await createAccount(auth, { name: 'under-yes', intendedScope: 'reads batch_jobs' });
    await createAccount(auth, { name: 'under-no', intendedScope: 'reads batchXjobs' });
    expect(names(await api.http.get('/v1/service-accounts?q=%25').set(auth).expect(200))).toEqual([
      'pct-yes',
    ]);
    expect(names(await api.http.get('/v1/service-accounts?q=100%25').set(auth).expect(200))).toEqual([
      'pct-yes',
    ]);
    expect(names(await api.http.get('/v1/service-accounts?q=_').set(auth).expect(200))).toEqual([
      'under-yes',
    ]);
    expect(names(await api.http.get('/v1/service-accounts?q=batch_jobs').set(auth).expect(200))).toEqual([
      'under-yes',
    ]);
    // A backslash is no escape character either.
    expect(names(await api.http.get('/v1/service-accounts?q=%5C').set(auth).expect(200))).toEqual([]);
  });

  it('combines filters', async () => {
    const { auth } = await tenant('sa-list-combined');
    await createAccount(auth, { name: 'combo-a', environment: 'production', businessOwner: 'ops' });
    await createAccount(auth, { name: 'combo-b', environment: 'staging', businessOwner: 'ops' });
    await createAccount(auth, { name: 'other-c', environment: 'production', businessOwner: 'ops' });
    const res = await api.http
      .get('/v1/service-accounts?environment=production&owner=ops&q=combo')
      .set(auth)
      .expect(200);
    expect(names(res)).toEqual(['combo-a']);
  });

  it('pages 7 accounts by 3 as 3 + 3 + 1, in creation order, each exactly once', async () => {
    const { auth } = await tenant('sa-list-paging');
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      // Some share a creation time (ties are ordered by id), some do not.
      if (i % 3 === 0) api.clock.advance(1000);
      created.push((await createAccount(auth, { name: `page-${i}` })).id);
    }
    const pages: Listed[][] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/service-accounts?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await api.http.get(url).set(auth).expect(200);
      pages.push(res.body.items);
      cursor = res.body.nextCursor;
      expect(pages.length).toBeLessThan(5);
    } while (cursor);

    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    const seen = pages.flat().map((a) => a.id);
    expect(new Set(seen).size).toBe(7);
    expect([...seen].sort()).toEqual([...created].sort());
    // Oldest first (ties among equal creation times are ordered by id, in the database's collation).
    const times = pages.flat().map((a) => (a as Listed & { createdAt: string }).createdAt);
    expect(times).toEqual([...times].sort());
    expect(new Set(times).size).toBe(3);
  });

  it('pages within a filter and ends with nextCursor null exactly at the end', async () => {
    const { auth } = await tenant('sa-list-paging-filter');
    for (let i = 0; i < 4; i++)
      await createAccount(auth, { name: `pf-prod-${i}`, environment: 'production' });
    for (let i = 0; i < 3; i++)
      await createAccount(auth, { name: `pf-dev-${i}`, environment: 'development' });
    const first = await api.http
      .get('/v1/service-accounts?environment=production&limit=2')
      .set(auth)
      .expect(200);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await api.http
      .get(
        `/v1/service-accounts?environment=production&limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`,
      )
      .set(auth)
      .expect(200);
    expect(second.body.items).toHaveLength(2);
    expect(second.body.nextCursor).toBeNull();
    expect([...names(first), ...names(second)].sort()).toEqual([
      'pf-prod-0',
      'pf-prod-1',
      'pf-prod-2',
      'pf-prod-3',
    ]);
  });

  it('answers at most 50 by default and up to 200 when asked', async () => {
    const { auth } = await tenant('sa-list-limit');
    for (let i = 0; i < 52; i++) await createAccount(auth, { name: `lim-${i}` });
    const byDefault = await api.http.get('/v1/service-accounts').set(auth).expect(200);
    expect(byDefault.body.items).toHaveLength(50);
    expect(byDefault.body.nextCursor).toEqual(expect.any(String));
    const max = await api.http.get('/v1/service-accounts?limit=200').set(auth).expect(200);
    expect(max.body.items).toHaveLength(52);
    expect(max.body.nextCursor).toBeNull();
  });
});

describe('PATCH /v1/service-accounts/{id}', () => {
  it('changes the named fields, bumps the version and ETag, and records only what changed', async () => {
    const { auth } = await tenant('sa-patch');
    const account = await createAccount(auth, { description: 'before', abuseDetection: true });
    api.clock.advance(60_000);
    const changes = {
      name: 'patched-name',
      description: 'after',
      intendedScope: 'now documented',
      businessOwner: 'new-biz',
      technicalOwner: 'new-tech',
      boundaries: ['site:plant-9', 'site:plant-1'],
      allowedCidrs: ['2001:db8::/32'],
      abuseDetection: false,
      rotationPolicy: { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: true },
      secretDelivery: { url: 'https://vault.internal/hook' },
      reason: 'ownership moved',
    };
    const res = await api.http.patch(`/v1/service-accounts/${account.id}`).set(auth).send(changes);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"2"');
    expect(res.body).toMatchObject({
      id: account.id,
      name: 'patched-name',
      environment: 'staging',
      description: 'after',
      intendedScope: 'now documented',
      businessOwner: 'new-biz',
      technicalOwner: 'new-tech',
      boundaries: ['site:plant-1', 'site:plant-9'],
      allowedCidrs: ['2001:db8::/32'],
      abuseDetection: false,
      rotationPolicy: { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: true },
      status: 'active',
      version: 2,
      createdAt: account.createdAt,
      updatedAt: api.clock.now().toISOString(),
    });
    expect(res.body.secretDelivery).toMatchObject({ url: 'https://vault.internal/hook' });
    expect(await getAccount(auth, account.id)).toMatchObject({ name: 'patched-name', version: 2 });

    const events = await eventsOf(account.id);
    expect(events.map((e) => e.type)).toEqual(['ServiceAccountCreated', 'ServiceAccountUpdated']);
    expect(events[1].metadata.reason).toBe('ownership moved');
    expect(events[1].data).toEqual({
      changes: {
        name: 'patched-name',
        description: 'after',
        intendedScope: 'now documented',
        businessOwner: 'new-biz',
        technicalOwner: 'new-tech',
        boundaries: ['site:plant-1', 'site:plant-9'],
        allowedCidrs: ['2001:db8::/32'],
        abuseDetection: false,
        rotationPolicy: { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: true },
        secretDelivery: { url: 'https://vault.internal/hook' },
      },
    });
  });

  it('records only the fields that really change', async () => {
    const { auth } = await tenant('sa-patch-partial');
    const account = await createAccount(auth, { description: 'same', businessOwner: 'keep' });
    await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({ description: 'same', businessOwner: 'keep', technicalOwner: 'moved' })
      .expect(200);
    const events = await eventsOf(account.id);
    expect(events[1].data).toEqual({ changes: { technicalOwner: 'moved' } });
  });

  it('succeeds with If-Match of the current version', async () => {
    const { auth } = await tenant('sa-patch-ifmatch');
    const account = await createAccount(auth);
    const first = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .set('If-Match', '"1"')
      .send({ description: 'one' });
    expect(first.status).toBe(200);
    expect(first.headers.etag).toBe('"2"');
    const second = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .set('If-Match', first.headers.etag)
      .send({ description: 'two' });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ description: 'two', version: 3 });
  });

  it.each([
    ['a weak ETag', 'W/"1"'],
    ['a bare number', '1'],
    ['a wildcard', '*'],
  ])('accepts If-Match as %s', async (label, ifMatch) => {
    const { auth } = await tenant(`sa-patch-ifmatch-${label.replace(/[^a-z]+/g, '-')}`);
    const account = await createAccount(auth);
    const res = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .set('If-Match', ifMatch)
      .send({ description: label });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ description: label, version: 2 });
  });

  it('answers 409 with expectedVersion and actualVersion for a stale If-Match, and changes nothing', async () => {
    const { auth } = await tenant('sa-patch-stale');
    const account = await createAccount(auth, { description: 'v1' });
    await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({ description: 'v2' })
      .expect(200);
    const res = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .set('If-Match', '"1"')
      .send({ description: 'lost update' });
    expectProblem(res, 409, 'CONFLICT');
    expect(res.body.expectedVersion).toBe(1);
    expect(res.body.actualVersion).toBe(2);
    expect(await getAccount(auth, account.id)).toMatchObject({ description: 'v2', version: 2 });
    expect(await eventsOf(account.id)).toHaveLength(2);
  });

  it('keeps the version when nothing changes', async () => {
    const { auth } = await tenant('sa-patch-noop');
    const account = await createAccount(auth, {
      description: 'steady',
      boundaries: ['site:a', 'site:b'],
      rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: false },
    });
    const res = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({
        description: 'steady',
        name: account.name,
        boundaries: ['site:b', 'site:a'],
        // The same policy with its keys in another order.
        rotationPolicy: { autoRotate: false, notifyBeforeDays: 14, maxKeyAgeDays: 90 },
      });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"1"');
    expect(res.body.version).toBe(1);
    const empty = await api.http.patch(`/v1/service-accounts/${account.id}`).set(auth).send({});
    expect(empty.status).toBe(200);
    expect(empty.body.version).toBe(1);
    expect(await eventsOf(account.id)).toHaveLength(1);
  });

  it('clears description and intendedScope with null and removes rotationPolicy with null', async () => {
    const { auth } = await tenant('sa-patch-null');
    const account = await createAccount(auth, {
      description: 'to clear',
      intendedScope: 'to clear too',
      rotationPolicy: { maxKeyAgeDays: 60, notifyBeforeDays: 10, autoRotate: false },
      secretDelivery: { url: 'https://vault.internal/a' },
    });
    const res = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({ description: null, intendedScope: null, rotationPolicy: null, secretDelivery: null })
      .expect(200);
    expect(res.body).toMatchObject({
      description: null,
      intendedScope: null,
      rotationPolicy: null,
      version: 2,
    });
    expect(res.body.secretDelivery ?? null).toBeNull();
    expect(await getAccount(auth, account.id)).toMatchObject({
      description: null,
      intendedScope: null,
      rotationPolicy: null,
    });
  });

  it('answers 404 for an unknown account', async () => {
    const { auth } = await tenant('sa-patch-404');
    const res = await api.http
      .patch('/v1/service-accounts/sa_BBBBBBBBBBBBBBBBBBBB')
      .set(auth)
      .send({ description: 'x' });
    expectProblem(res, 404, 'NOT_FOUND');
  });
});

describe('disable, enable and delete', () => {
  it('disables and enables with a reason, each recorded with who and why', async () => {
    const { auth, tenantId } = await tenant('sa-lifecycle');
    const operator = await adminOperator(auth, tenantId);
    const account = await createAccount(auth);

    const disabled = await api.http
      .post(`/v1/service-accounts/${account.id}/disable`)
      .set(auth)
      .send({ reason: 'suspicious traffic' });
    expect(disabled.status).toBe(200);
    expect(disabled.headers.etag).toBe('"2"');
    expect(disabled.body).toMatchObject({ id: account.id, status: 'disabled', version: 2 });
    expect((await getAccount(auth, account.id)).status).toBe('disabled');

    const enabled = await api.http
      .post(`/v1/service-accounts/${account.id}/enable`)
      .set(auth)
      .send({ reason: 'all clear' });
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({ status: 'active', version: 3 });

    const events = await eventsOf(account.id);
    expect(events.map((e) => [e.type, e.metadata.reason])).toEqual([
      ['ServiceAccountCreated', null],
      ['ServiceAccountDisabled', 'suspicious traffic'],
      ['ServiceAccountEnabled', 'all clear'],
    ]);
    expect(events[1].metadata.actor).toEqual({ type: 'operator', id: operator.id, name: operator.name });
  });

  it('accepts a change without a body (reason is optional)', async () => {
    const { auth } = await tenant('sa-lifecycle-nobody');
    const account = await createAccount(auth);
    const res = await api.http.post(`/v1/service-accounts/${account.id}/disable`).set(auth);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('disabled');
    const events = await eventsOf(account.id);
    expect(events[1].metadata.reason).toBeNull();
  });

  it('deletes softly: 200 with the account, GET still answers it, history is kept', async () => {
    const { auth } = await tenant('sa-delete');
    const account = await createAccount(auth, { name: 'to-delete' });
    const res = await api.http
      .delete(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({ reason: 'decommissioned' });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"2"');
    expect(res.body).toMatchObject({ id: account.id, name: 'to-delete', status: 'deleted', version: 2 });

    const fetched = await api.http.get(`/v1/service-accounts/${account.id}`).set(auth).expect(200);
    expect(fetched.body).toMatchObject({ id: account.id, status: 'deleted', version: 2 });
    const events = await eventsOf(account.id);
    expect(events.map((e) => e.type)).toEqual(['ServiceAccountCreated', 'ServiceAccountDeleted']);
    expect(events[1].metadata.reason).toBe('decommissioned');
  });

  it('deletes a disabled account', async () => {
    const { auth } = await tenant('sa-delete-disabled');
    const account = await createAccount(auth);
    await api.http.post(`/v1/service-accounts/${account.id}/disable`).set(auth).send({}).expect(200);
    const res = await api.http.delete(`/v1/service-accounts/${account.id}`).set(auth).send({});
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('deleted');
  });

  it('answers 409 for enabling an active account and disabling a disabled one, writing nothing', async () => {
    const { auth } = await tenant('sa-illegal-active');
    const account = await createAccount(auth);
    expectProblem(
      await api.http.post(`/v1/service-accounts/${account.id}/enable`).set(auth).send({}),
      409,
      'CONFLICT',
    );
    await api.http.post(`/v1/service-accounts/${account.id}/disable`).set(auth).send({}).expect(200);
    expectProblem(
      await api.http.post(`/v1/service-accounts/${account.id}/disable`).set(auth).send({}),
      409,
      'CONFLICT',
    );
    expect((await eventsOf(account.id)).map((e) => e.type)).toEqual([
      'ServiceAccountCreated',
      'ServiceAccountDisabled',
    ]);
    expect(await getAccount(auth, account.id)).toMatchObject({ status: 'disabled', version: 2 });
  });

  it('answers 409 for every change of a deleted account, writing nothing', async () => {
    const { auth } = await tenant('sa-illegal-deleted');
    const account = await createAccount(auth, { allowedScopes: ['tickets:read'] });
    await api.http.delete(`/v1/service-accounts/${account.id}`).set(auth).send({}).expect(200);
    const before = await eventCount(api);
    const url = `/v1/service-accounts/${account.id}`;
    const attempts: [string, () => Promise<Response>][] = [
      ['enable', () => api.http.post(`${url}/enable`).set(auth).send({})],
      ['disable', () => api.http.post(`${url}/disable`).set(auth).send({})],
      ['patch', () => api.http.patch(url).set(auth).send({ description: 'resurrected' })],
      [
        'grant',
        () =>
          api.http
            .post(`${url}/scopes`)
            .set(auth)
            .send({ scopes: ['billing:read'] }),
      ],
      ['narrow', () => api.http.delete(`${url}/scopes/tickets%3Aread`).set(auth).send({})],
      ['delete again', () => api.http.delete(url).set(auth).send({})],
    ];
    for (const [label, attempt] of attempts) {
      const res = await attempt();
      expect([label, res.status]).toEqual([label, 409]);
      expectProblem(res, 409, 'CONFLICT');
    }
    expect(await eventCount(api)).toBe(before);
    expect(await getAccount(auth, account.id)).toMatchObject({
      status: 'deleted',
      version: 2,
      description: null,
      allowedScopes: ['tickets:read'],
    });
  });

  it.each([
    ['disable', 'post', '/disable'],
    ['delete', 'delete', ''],
  ] as const)(
    'answers 409 for %s with a stale If-Match, and changes nothing',
    async (label, method, suffix) => {
      const { auth } = await tenant(`sa-stale-${label}`);
      const account = await createAccount(auth);
      await api.http
        .patch(`/v1/service-accounts/${account.id}`)
        .set(auth)
        .send({ description: 'v2' })
        .expect(200);
      const res = await api.http[method](`/v1/service-accounts/${account.id}${suffix}`)
        .set(auth)
        .set('If-Match', '"1"')
        .send({});
      expectProblem(res, 409, 'CONFLICT');
      expect(res.body).toMatchObject({ expectedVersion: 1, actualVersion: 2 });
      expect(await getAccount(auth, account.id)).toMatchObject({ status: 'active', version: 2 });
    },
  );

  it('applies a lifecycle change with the current If-Match', async () => {
    const { auth } = await tenant('sa-ifmatch-lifecycle');
    const account = await createAccount(auth);
    const res = await api.http
      .post(`/v1/service-accounts/${account.id}/disable`)
      .set(auth)
      .set('If-Match', '"1"')
      .send({});
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'disabled', version: 2 });
  });

  it.each([
    ['disable', 'post', '/disable'],
    ['enable', 'post', '/enable'],
    ['delete', 'delete', ''],
  ] as const)('answers 404 to %s of an unknown account', async (label, method, suffix) => {
    const { auth } = await tenant(`sa-404-${label}`);
    const res = await api.http[method](`/v1/service-accounts/sa_CCCCCCCCCCCCCCCCCCCC${suffix}`)
      .set(auth)
      .send({});
    expectProblem(res, 404, 'NOT_FOUND');
  });
});

describe('scopes', () => {
  it('widens the ceiling as a sorted union, bumping the version and recording only the added scopes', async () => {
    const { auth } = await tenant('sa-scopes-grant');
    const account = await createAccount(auth, { allowedScopes: ['tickets:read'] });
    const res = await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .send({
        scopes: ['summaries:draft', 'tickets:read', 'billing:read', 'billing:read'],
        reason: 'phase 2',
      });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"2"');
    expect(res.body).toMatchObject({
      allowedScopes: ['billing:read', 'summaries:draft', 'tickets:read'],
      version: 2,
    });
    expect((await getAccount(auth, account.id)).allowedScopes).toEqual([
      'billing:read',
      'summaries:draft',
      'tickets:read',
    ]);
    const events = await eventsOf(account.id);
    expect(events[1].type).toBe('ScopesGranted');
    expect(events[1].data).toEqual({ scopes: ['billing:read', 'summaries:draft'] });
    expect(events[1].metadata.reason).toBe('phase 2');
  });

  it('changes nothing when every scope is held already', async () => {
    const { auth } = await tenant('sa-scopes-regrant');
    const account = await createAccount(auth, { allowedScopes: ['tickets:read', 'billing:read'] });
    const res = await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .send({ scopes: ['billing:read', 'tickets:read'] });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"1"');
    expect(res.body).toMatchObject({ allowedScopes: ['billing:read', 'tickets:read'], version: 1 });
    expect(await eventsOf(account.id)).toHaveLength(1);
  });

  it('grants a wildcard scope (outside production)', async () => {
    const { auth } = await tenant('sa-scopes-wildcard');
    const account = await createAccount(auth, { environment: 'development' });
    const res = await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .send({ scopes: ['product:*'] })
      .expect(200);
    expect(res.body.allowedScopes).toEqual(['product:*']);
  });

  it('narrows the ceiling by a URL-encoded scope', async () => {
    const { auth } = await tenant('sa-scopes-narrow');
    const account = await createAccount(auth, {
      environment: 'development',
      allowedScopes: ['tickets:read', 'product:*', 'billing:read'],
    });
    const first = await api.http
      .delete(`/v1/service-accounts/${account.id}/scopes/tickets%3Aread`)
      .set(auth)
      .send({ reason: 'not needed' });
    expect(first.status).toBe(200);
    expect(first.headers.etag).toBe('"2"');
    expect(first.body).toMatchObject({ allowedScopes: ['billing:read', 'product:*'], version: 2 });

    const second = await api.http.delete(`/v1/service-accounts/${account.id}/scopes/product%3A*`).set(auth);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ allowedScopes: ['billing:read'], version: 3 });

    const third = await api.http.delete(`/v1/service-accounts/${account.id}/scopes/billing:read`).set(auth);
    expect(third.status).toBe(200);
    expect(third.body.allowedScopes).toEqual([]);

    const events = await eventsOf(account.id);
    expect(events.slice(1).map((e) => [e.type, e.data, e.metadata.reason])).toEqual([
      ['ScopeRevoked', { scope: 'tickets:read' }, 'not needed'],
      ['ScopeRevoked', { scope: 'product:*' }, null],
      ['ScopeRevoked', { scope: 'billing:read' }, null],
    ]);
  });

  it('answers 404 for narrowing a scope the account does not hold, writing nothing', async () => {
    const { auth } = await tenant('sa-scopes-not-held');
    const account = await createAccount(auth, { allowedScopes: ['tickets:read'] });
    const before = await eventCount(api);
    expectProblem(
      await api.http.delete(`/v1/service-accounts/${account.id}/scopes/tickets%3Awrite`).set(auth),
      404,
      'NOT_FOUND',
    );
    // A wildcard is not a way to remove the scopes it would cover.
    expectProblem(
      await api.http.delete(`/v1/service-accounts/${account.id}/scopes/tickets%3A*`).set(auth),
      404,
      'NOT_FOUND',
    );
    expect(await eventCount(api)).toBe(before);
    expect(await getAccount(auth, account.id)).toMatchObject({ allowedScopes: ['tickets:read'], version: 1 });
  });

  it('answers 409 for a scope change with a stale If-Match, and changes nothing', async () => {
    const { auth } = await tenant('sa-scopes-stale');
    const account = await createAccount(auth, { allowedScopes: ['tickets:read'] });
    await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .send({ scopes: ['billing:read'] })
      .expect(200);
    const grant = await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .set('If-Match', '"1"')
      .send({ scopes: ['summaries:draft'] });
    expectProblem(grant, 409, 'CONFLICT');
    expect(grant.body).toMatchObject({ expectedVersion: 1, actualVersion: 2 });
    const narrow = await api.http
      .delete(`/v1/service-accounts/${account.id}/scopes/tickets%3Aread`)
      .set(auth)
      .set('If-Match', '"1"');
    expectProblem(narrow, 409, 'CONFLICT');
    expect(await getAccount(auth, account.id)).toMatchObject({
      allowedScopes: ['billing:read', 'tickets:read'],
      version: 2,
    });
  });

  it('answers 404 for scope changes of an unknown account', async () => {
    const { auth } = await tenant('sa-scopes-404');
    const id = 'sa_DDDDDDDDDDDDDDDDDDDD';
    expectProblem(
      await api.http
        .post(`/v1/service-accounts/${id}/scopes`)
        .set(auth)
        .send({ scopes: ['a:b'] }),
      404,
      'NOT_FOUND',
    );
    expectProblem(
      await api.http.delete(`/v1/service-accounts/${id}/scopes/a%3Ab`).set(auth),
      404,
      'NOT_FOUND',
    );
  });
});

describe('concurrent changes', () => {
  it('applies exactly one of five racing changes based on the same version', async () => {
    const { auth } = await tenant('sa-race-patch');
    const account = await createAccount(auth);
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        api.http
          .patch(`/v1/service-accounts/${account.id}`)
          .set(auth)
          .set('If-Match', '"1"')
          .send({ description: `writer ${i}` }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409]);
    for (const res of results.filter((r) => r.status === 409)) {
      expectProblem(res, 409, 'CONFLICT');
      expect(res.body).toMatchObject({ expectedVersion: 1, actualVersion: 2 });
    }
    const winner = results.find((r) => r.status === 200)!;
    expect(await getAccount(auth, account.id)).toMatchObject({
      description: winner.body.description,
      version: 2,
    });
    expect(await eventsOf(account.id)).toHaveLength(2);
  });

  it('disables exactly once when five disables race', async () => {
    const { auth } = await tenant('sa-race-disable');
    const account = await createAccount(auth);
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        api.http.post(`/v1/service-accounts/${account.id}/disable`).set(auth).send({}),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409]);
    expect((await eventsOf(account.id)).map((e) => e.type)).toEqual([
      'ServiceAccountCreated',
      'ServiceAccountDisabled',
    ]);
  });

  it('lets only one of two accounts racing to rename onto one free name have it', async () => {
    const { auth } = await tenant('sa-race-rename');
    const first = await createAccount(auth, { name: 'racer-one' });
    const second = await createAccount(auth, { name: 'racer-two' });
    const results = await Promise.all(
      [first, second].map((a) =>
        api.http.patch(`/v1/service-accounts/${a.id}`).set(auth).send({ name: 'the-prize' }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expectProblem(
      results.find((r) => r.status === 409)!,
      409,
      'CONFLICT',
    );
    const list = await api.http.get('/v1/service-accounts?q=the-prize').set(auth).expect(200);
    expect(list.body.items).toHaveLength(1);
  });
});
