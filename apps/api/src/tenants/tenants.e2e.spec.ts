import { createHash } from 'node:crypto';
import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  startTestApi,
  type TestApi,
  eventCount,
} from '../../../../test/support/api';

const bootstrap = bearer(BOOTSTRAP_TOKEN);
let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});

describe('POST /v1/tenants', () => {
  it('creates a tenant with the bootstrap token and records TenantCreated', async () => {
    const res = await api.http
      .post('/v1/tenants')
      .set(bootstrap)
      .send({ id: 'tn-create', name: 'Create Co' })
      .expect(201);
    expect(res.body).toEqual({ id: 'tn-create', name: 'Create Co', createdAt: '2026-03-01T09:00:00.000Z' });
    const event = await api.database.db
      .selectFrom('events')
      .selectAll()
      .where('stream_id', '=', 'tenant-tn-create')
      .executeTakeFirstOrThrow();
    expect(event.type).toBe('TenantCreated');
    expect(event.metadata).toMatchObject({
      actor: { type: 'bootstrap' },
      correlationId: res.headers['x-correlation-id'],
    });
  });

  it('answers 409 for a tenant id that exists, and writes nothing', async () => {
    await api.http.post('/v1/tenants').set(bootstrap).send({ id: 'tn-dup', name: 'One' }).expect(201);
    const before = await eventCount(api);
    const res = await api.http
      .post('/v1/tenants')
      .set(bootstrap)
      .send({ id: 'tn-dup', name: 'Two' })
      .expect(409);
    expect(res.body.code).toBe('CONFLICT');
    expect(await eventCount(api)).toBe(before);
  });

  it('creates exactly one of several racing creates of one tenant', async () => {
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        api.http.post('/v1/tenants').set(bootstrap).send({ id: 'tn-race', name: 'Race' }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
  });

  it.each([
    [{ id: 'X', name: 'n' }, 'id'],
    [{ id: 'ok-id', name: '' }, 'name'],
    [{ id: 'ok-id' }, 'name'],
    [{ id: 'ok-id', name: 'n', plan: 'gold' }, 'plan'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    const res = await api.http.post('/v1/tenants').set(bootstrap).send(body).expect(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
  });

  it('is for the bootstrap token only', async () => {
    const t = await createTenant(api, 'tn-only-boot');
    const res = await api.http
      .post('/v1/tenants')
      .set(bearer(t.admin))
      .send({ id: 'tn-by-admin', name: 'n' })
      .expect(403);
    expect(res.body.code).toBe('FORBIDDEN');
    await api.http.post('/v1/tenants').send({ id: 'tn-no-auth', name: 'n' }).expect(401);
  });
});

describe('operators', () => {
  it('shows the token once and stores only its SHA-256', async () => {
    await api.http.post('/v1/tenants').set(bootstrap).send({ id: 'op-once', name: 'Once' }).expect(201);
    const res = await api.http
      .post('/v1/operators')
      .set(bootstrap)
      .send({ tenantId: 'op-once', name: 'alice', role: 'admin' })
      .expect(201);
    const token: string = res.body.token;
    expect(token).toMatch(/^kwop_[0-9A-Za-z]{43}$/);
    expect(res.body).toMatchObject({ tenantId: 'op-once', name: 'alice', role: 'admin', status: 'active' });
    expect(token.startsWith(res.body.tokenPrefix)).toBe(true);

    const row = await api.database.db
      .selectFrom('operators')
      .selectAll()
      .where('id', '=', res.body.id)
      .executeTakeFirstOrThrow();
    expect(row.token_hash).toBe(createHash('sha256').update(token).digest('hex'));

    const listed = await api.http.get('/v1/operators').set(bearer(token)).expect(200);
    const got = await api.http.get(`/v1/operators/${res.body.id}`).set(bearer(token)).expect(200);
    for (const body of [JSON.stringify(listed.body), JSON.stringify(got.body)])
      expect(body).not.toContain(token);
    const events = await api.database.db.selectFrom('events').select(['data', 'metadata']).execute();
    expect(JSON.stringify(events)).not.toContain(token);
    expect(api.logs()).not.toContain(token);
  });

  it('lets an admin create operators in its own tenant; another tenant is 404', async () => {
    const a = await createTenant(api, 'op-a');
    await createTenant(api, 'op-b');
    const own = await api.http
      .post('/v1/operators')
      .set(bearer(a.admin))
      .send({ name: 'bob', role: 'auditor' })
      .expect(201);
    expect(own.body.tenantId).toBe('op-a');
    const other = await api.http
      .post('/v1/operators')
      .set(bearer(a.admin))
      .send({ tenantId: 'op-b', name: 'mallory', role: 'admin' })
      .expect(404);
    expect(other.body.code).toBe('NOT_FOUND');
  });

  it('needs a tenant from the bootstrap token, and an existing one', async () => {
    const missing = await api.http
      .post('/v1/operators')
      .set(bootstrap)
      .send({ name: 'x', role: 'admin' })
      .expect(400);
    expect(missing.body.errors[0].field).toBe('tenantId');
    await api.http
      .post('/v1/operators')
      .set(bootstrap)
      .send({ tenantId: 'no-such-tenant', name: 'x', role: 'admin' })
      .expect(404);
    const role = await api.http
      .post('/v1/operators')
      .set(bootstrap)
      .send({ tenantId: 'op-a', name: 'x', role: 'root' })
      .expect(400);
    expect(role.body.errors[0].field).toBe('role');
  });

  it('lists only the caller tenant, paged', async () => {
    const t = await createTenant(api, 'op-list');
    for (const role of ['approver', 'auditor', 'verifier'] as const) await t.token(role);
    const first = await api.http.get('/v1/operators?limit=2').set(bearer(t.admin)).expect(200);
    expect(first.body.items).toHaveLength(2);
    const second = await api.http
      .get(`/v1/operators?limit=2&cursor=${first.body.nextCursor}`)
      .set(bearer(t.admin))
      .expect(200);
    expect(second.body.items).toHaveLength(2);
    expect(second.body.nextCursor).toBeNull();
    const all = [...first.body.items, ...second.body.items];
    expect(new Set(all.map((o: { id: string }) => o.id)).size).toBe(4);
    expect(all.every((o: { tenantId: string }) => o.tenantId === 'op-list')).toBe(true);
    // An admin asking for another tenant's operators sees none.
    const foreign = await api.http.get('/v1/operators?tenantId=op-a').set(bearer(t.admin)).expect(200);
    expect(foreign.body.items).toEqual([]);
    // The bootstrap token sees any tenant's.
    const byBoot = await api.http.get('/v1/operators?tenantId=op-list&limit=200').set(bootstrap).expect(200);
    expect(byBoot.body.items).toHaveLength(4);
  });

  it('deletes an operator: its token stops working at once; another tenant gets 404', async () => {
    const t = await createTenant(api, 'op-del');
    const other = await createTenant(api, 'op-del-other');
    const created = await api.http
      .post('/v1/operators')
      .set(bearer(t.admin))
      .send({ name: 'temp', role: 'auditor' })
      .expect(201);
    await api.http.get('/v1/service-accounts').set(bearer(created.body.token)).expect(200);

    await api.http.delete(`/v1/operators/${created.body.id}`).set(bearer(other.admin)).send({}).expect(404);
    await api.http.get(`/v1/operators/${created.body.id}`).set(bearer(other.admin)).expect(404);

    const res = await api.http
      .delete(`/v1/operators/${created.body.id}`)
      .set(bearer(t.admin))
      .send({ reason: 'left' })
      .expect(200);
    expect(res.body.status).toBe('deleted');
    const denied = await api.http.get('/v1/service-accounts').set(bearer(created.body.token)).expect(401);
    expect(denied.body.code).toBe('UNAUTHENTICATED');
    await api.http.delete(`/v1/operators/${created.body.id}`).set(bearer(t.admin)).send({}).expect(409);
    const event = await api.database.db
      .selectFrom('events')
      .selectAll()
      .where('stream_id', '=', created.body.id)
      .where('type', '=', 'OperatorDeleted')
      .executeTakeFirstOrThrow();
    expect(event.metadata).toMatchObject({
      reason: 'left',
      actor: { type: 'operator', name: 'admin-op-del' },
    });
  });

  it('enforces roles: only an admin (or the bootstrap token) manages operators', async () => {
    const t = await createTenant(api, 'op-roles');
    for (const role of ['approver', 'auditor', 'verifier'] as const) {
      const token = await t.token(role);
      const res = await api.http
        .post('/v1/operators')
        .set(bearer(token))
        .send({ name: 'x', role: 'admin' })
        .expect(403);
      expect(res.body.code).toBe('FORBIDDEN');
      await api.http.delete('/v1/operators/op_AAAAAAAAAAAAAAAAAAAA').set(bearer(token)).send({}).expect(403);
    }
    await api.http
      .get('/v1/operators')
      .set(bearer(await t.token('auditor')))
      .expect(200);
    await api.http
      .get('/v1/operators')
      .set(bearer(await t.token('verifier')))
      .expect(403);
  });
});

describe('text PostgreSQL cannot store', () => {
  it.each([
    ['a NUL character', '{"id":"tn-nul","name":"bad\\u0000name"}'],
    ['an unpaired surrogate', '{"id":"tn-sur","name":"bad\\ud800name"}'],
    ['a NUL in a key', '{"id":"tn-key","name":"n","\\u0000":1}'],
  ])('answers %s in a body with 400 and writes nothing', async (_what, body) => {
    const before = await eventCount(api);
    const res = await api.http
      .post('/v1/tenants')
      .set(bootstrap)
      .set('Content-Type', 'application/json')
      .send(body)
      .expect(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(await eventCount(api)).toBe(before);
  });

  it('refuses it in operator names too', async () => {
    await api.http.post('/v1/tenants').set(bootstrap).send({ id: 'tn-opname', name: 'Op names' }).expect(201);
    await api.http
      .post('/v1/operators')
      .set(bootstrap)
      .set('Content-Type', 'application/json')
      .send('{"tenantId":"tn-opname","name":"x\\udc00","role":"admin"}')
      .expect(400);
  });
});
