import {
  bearer,
  createTenant,
  eventCount,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TenantFixture,
  type TestApi,
} from '../../../../test/support/api';

/** API.md "Operators, tenants, webhooks": registration, listing, deliveries; private addresses refused. */

// A public address as a literal: registration resolves no name for it, so no test needs DNS.
const PUBLIC_URL = 'https://93.184.215.14/keyward-hook';

let api: TestApi;
let acme: TenantFixture;
let other: TenantFixture;

beforeAll(async () => {
  // KEYWARD_WEBHOOK_ALLOW_PRIVATE is left at its default (false).
  api = await startTestApi();
  acme = await createTenant(api, 'wh-acme');
  other = await createTenant(api, 'wh-other');
});
afterAll(async () => {
  await api?.close();
});
afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
});

function register(token: string, body: object) {
  return api.http.post('/v1/webhooks').set(bearer(token)).send(body);
}

describe('POST /v1/webhooks', () => {
  it('answers 201 with the webhook, its Location and its signing secret, shown this once', async () => {
    const res = await register(acme.admin, {
      url: PUBLIC_URL,
      events: ['key.revoked', 'key.issued', 'key.revoked'],
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^wh_[0-9A-Za-z]{20}$/),
      url: PUBLIC_URL,
      events: ['key.revoked', 'key.issued'],
      createdAt: '2026-03-01T09:00:00.000Z',
      signingSecret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/),
    });
    expect(res.headers.location).toBe(`/v1/webhooks/${res.body.id}`);
    const secret = res.body.signingSecret as string;

    const one = await api.http.get(res.headers.location).set(bearer(acme.admin)).expect(200);
    const list = await api.http.get('/v1/webhooks').set(bearer(acme.admin)).expect(200);
    expect(one.body).toEqual({
      id: res.body.id,
      url: PUBLIC_URL,
      events: res.body.events,
      createdAt: res.body.createdAt,
    });
    expect(list.body.items).toContainEqual(one.body);
    expect(list.body.nextCursor).toBeNull();

    // The secret is in no event, no log line, no other answer; at rest only as ciphertext.
    const events = await api.database.db.selectFrom('events').selectAll().execute();
    expect(JSON.stringify(events.map((e) => [e.data, e.metadata]))).not.toContain(secret);
    expect(events.find((e) => e.stream_id === res.body.id)).toMatchObject({
      type: 'WebhookRegistered',
      stream_type: 'webhook',
      data: { id: res.body.id, tenantId: 'wh-acme', url: PUBLIC_URL, events: ['key.revoked', 'key.issued'] },
    });
    expect(api.logs()).not.toContain(secret);
    expect(JSON.stringify([one.body, list.body])).not.toContain(secret);
    expect(JSON.stringify(await api.database.db.selectFrom('webhooks').selectAll().execute())).not.toContain(
      secret,
    );
    const stored = await api.database.db
      .selectFrom('webhook_secrets')
      .selectAll()
      .where('webhook_id', '=', res.body.id)
      .executeTakeFirstOrThrow();
    expect(stored.ciphertext).toMatch(/^v1\./);
    expect(stored.ciphertext).not.toContain(secret);
    expect(stored.ciphertext).not.toContain(secret.slice(6, 20));
  });

  it.each<[string, object, string]>([
    ['no url', { events: ['key.revoked'] }, 'url'],
    ['no events', { url: PUBLIC_URL }, 'events'],
    ['empty events', { url: PUBLIC_URL, events: [] }, 'events'],
    ['events not strings', { url: PUBLIC_URL, events: [1] }, 'events'],
    ['an unknown field', { url: PUBLIC_URL, events: ['key.revoked'], secret: 'mine' }, 'secret'],
    ['an unknown event name', { url: PUBLIC_URL, events: ['key.eaten'] }, 'events.0'],
    ['a url that is not one', { url: 'hooks', events: ['key.revoked'] }, 'url'],
    ['an ftp url', { url: 'ftp://93.184.215.14/x', events: ['key.revoked'] }, 'url'],
    ['credentials in the url', { url: 'https://u:p@93.184.215.14/x', events: ['key.revoked'] }, 'url'],
  ])('answers 400 for %s and stores nothing', async (_label, body, field) => {
    const before = await eventCount(api);
    const res = await register(acme.admin, body);
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(await eventCount(api)).toBe(before);
  });

  it('answers 400 for approval.requested, saying it is not available yet', async () => {
    const res = await register(acme.admin, {
      url: PUBLIC_URL,
      events: ['key.revoked', 'approval.requested'],
    });
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual([
      { field: 'events.1', message: 'approval.requested is not available yet' },
    ]);
  });

  it.each([
    'http://127.0.0.1:8080/hook',
    'http://localhost:8080/hook',
    'http://10.1.2.3/hook',
    'http://192.168.0.10/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://[::1]/hook',
    'http://[fd00::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://0.0.0.0/hook',
    'http://[2001:db8::1]/hook',
    'http://198.18.0.1/hook',
    'http://192.0.2.10/hook',
    'http://198.51.100.7/hook',
    'http://203.0.113.9/hook',
    'http://100.64.0.1/hook',
    'http://240.0.0.1/hook',
    'http://224.0.0.251/hook',
    'http://[64:ff9b::a9fe:a9fe]/hook',
    'http://[2002:a00:1::1]/hook',
    'http://[3fff::1]/hook',
  ])('refuses %s with 422 POLICY_VIOLATION while special-purpose addresses are not allowed', async (url) => {
    const before = await eventCount(api);
    const res = await register(acme.admin, { url, events: ['key.revoked'] });
    expectProblem(res, 422, 'POLICY_VIOLATION');
    expect(res.body.errors).toEqual([{ field: 'url', message: expect.any(String) }]);
    expect(await eventCount(api)).toBe(before);
  });

  it('answers 401 without a credential and 403 to roles that may not manage', async () => {
    expectProblem(
      await api.http.post('/v1/webhooks').send({ url: PUBLIC_URL, events: ['key.revoked'] }),
      401,
      'UNAUTHENTICATED',
    );
    expectProblem(await api.http.get('/v1/webhooks'), 401, 'UNAUTHENTICATED');
    for (const role of ['auditor', 'verifier', 'approver'] as const) {
      expectProblem(
        await register(await acme.token(role), { url: PUBLIC_URL, events: ['key.revoked'] }),
        403,
        'FORBIDDEN',
      );
    }
    expectProblem(
      await api.http.get('/v1/webhooks').set(bearer(await acme.token('verifier'))),
      403,
      'FORBIDDEN',
    );
    await api.http
      .get('/v1/webhooks')
      .set(bearer(await acme.token('auditor')))
      .expect(200);
  });
});

describe('isolation', () => {
  it("answers 404 for another tenant's webhook and its deliveries, and never lists it", async () => {
    const mine = await register(acme.admin, { url: PUBLIC_URL, events: ['account.created'] }).expect(201);
    const id = mine.body.id as string;
    expectProblem(await api.http.get(`/v1/webhooks/${id}`).set(bearer(other.admin)), 404, 'NOT_FOUND');
    expectProblem(
      await api.http.get(`/v1/webhooks/${id}/deliveries`).set(bearer(other.admin)),
      404,
      'NOT_FOUND',
    );
    const list = await api.http.get('/v1/webhooks').set(bearer(other.admin)).expect(200);
    expect(list.body.items.map((w: { id: string }) => w.id)).not.toContain(id);
    expectProblem(
      await api.http.get('/v1/webhooks/wh_nope/deliveries').set(bearer(acme.admin)),
      404,
      'NOT_FOUND',
    );
  });
});

describe('GET /v1/webhooks/{id}/deliveries', () => {
  it('lists one delivery per subscribed event, newest first, paged, for this tenant only', async () => {
    const t = await createTenant(api, 'wh-deliveries');
    const hook = await register(t.admin, { url: PUBLIC_URL, events: ['account.created'] }).expect(201);
    const unsubscribed = await register(t.admin, { url: PUBLIC_URL, events: ['key.revoked'] }).expect(201);
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      api.clock.advance(60_000);
      const name = `wh-account-${i}`;
      names.push(name);
      await api.http
        .post('/v1/service-accounts')
        .set(bearer(t.admin))
        .send({
          name,
          environment: 'development',
          businessOwner: 'ops',
          technicalOwner: 'platform',
          allowedScopes: ['a:read'],
        })
        .expect(201);
    }
    // Another tenant's account is not delivered to this tenant's webhook.
    await api.http
      .post('/v1/service-accounts')
      .set(bearer(other.admin))
      .send({
        name: 'wh-elsewhere',
        environment: 'development',
        businessOwner: 'o',
        technicalOwner: 'p',
        allowedScopes: ['a:read'],
      })
      .expect(201);

    const url = `/v1/webhooks/${hook.body.id}/deliveries`;
    const first = await api.http.get(url).query({ limit: 2 }).set(bearer(t.admin)).expect(200);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.items[0]).toEqual({
      id: expect.stringMatching(/^whd_[0-9A-Za-z]{20}$/),
      event: 'account.created',
      status: 'pending',
      attempts: 0,
      lastStatusCode: null,
      lastError: null,
      createdAt: expect.any(String),
      deliveredAt: null,
    });
    const second = await api.http
      .get(url)
      .query({ limit: 2, cursor: first.body.nextCursor })
      .set(bearer(t.admin))
      .expect(200);
    expect(second.body.items).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    const times = [...first.body.items, ...second.body.items].map((d: { createdAt: string }) => d.createdAt);
    expect(times).toEqual([...times].sort().reverse());
    expect(new Set(times).size).toBe(3);

    // The stored body names the account's stream; the list answer does not carry bodies at all.
    const bodies = await api.database.db
      .selectFrom('webhook_deliveries')
      .select('body')
      .where('webhook_id', '=', hook.body.id)
      .execute();
    expect(bodies.map((b) => JSON.parse(b.body).data.name).sort()).toEqual(names);

    const none = await api.http
      .get(`/v1/webhooks/${unsubscribed.body.id}/deliveries`)
      .set(bearer(t.admin))
      .expect(200);
    expect(none.body).toEqual({ items: [], nextCursor: null });
    expectProblem(
      await api.http.get(url).query({ cursor: 'bogus' }).set(bearer(t.admin)),
      400,
      'VALIDATION_FAILED',
    );
    expectProblem(await api.http.get(url).query({ limit: 0 }).set(bearer(t.admin)), 400, 'VALIDATION_FAILED');
  });
});
