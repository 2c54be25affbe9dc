import type { Response } from 'supertest';
import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TenantFixture,
  type TestApi,
} from '../../../../test/support/api';

/** API.md "History and replay": GET /v1/service-accounts/{id}/history and GET /v1/keys/{keyId}/history. */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));
afterEach(() => api.clock.set('2026-03-01T09:00:00.000Z'));

type Headers = Record<string, string>;

interface EventBody {
  position: number;
  streamId: string;
  version: number;
  type: string;
  occurredAt: string;
  actor: { type: string; id: string; name: string };
  reason: string | null;
  correlationId: string;
  data: Record<string, unknown>;
}

interface Tenant extends TenantFixture {
  auth: Headers;
  auditor: Headers;
}

async function tenant(id: string): Promise<Tenant> {
  const fixture = await createTenant(api, id);
  return { ...fixture, auth: bearer(fixture.admin), auditor: bearer(await fixture.token('auditor')) };
}

async function createAccount(t: Tenant, name: string, correlationId = 'create-account'): Promise<string> {
  const res = await api.http
    .post('/v1/service-accounts')
    .set(t.auth)
    .set('X-Correlation-Id', correlationId)
    .send({
      name,
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['tickets:read', 'summaries:draft'],
    })
    .expect(201);
  return res.body.id;
}

async function issueKey(
  t: Tenant,
  accountId: string,
): Promise<{ id: string; prefix: string; secret: string }> {
  const res = await api.http
    .post(`/v1/service-accounts/${accountId}/keys`)
    .set(t.auth)
    .send({ name: 'digest-worker-1', scopes: ['tickets:read'] })
    .expect(201);
  return res.body;
}

/** Every page of a history, following nextCursor; also returns the raw answers. */
async function wholeHistory(
  path: string,
  auth: Headers,
  limit?: number,
): Promise<{ items: EventBody[]; answers: Response[] }> {
  const items: EventBody[] = [];
  const answers: Response[] = [];
  let cursor: string | null = null;
  do {
    const query: Record<string, string | number> = {};
    if (limit !== undefined) query.limit = limit;
    if (cursor) query.cursor = cursor;
    const res = await api.http.get(path).query(query).set(auth).expect(200);
    expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
    answers.push(res);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return { items, answers };
}

it("answers an account's events oldest first, with who made each change, why and in which request", async () => {
  const t = await tenant('hist-account');
  const id = await createAccount(t, 'nightly-digest-summariser', 'create-4711');
  api.clock.advance(60_000);
  await api.http
    .patch(`/v1/service-accounts/${id}`)
    .set(t.auth)
    .set('X-Correlation-Id', 'patch-4712')
    .send({ description: "Summarises yesterday's tickets", reason: 'ticket OPS-12' })
    .expect(200);
  api.clock.advance(60_000);
  await api.http
    .post(`/v1/service-accounts/${id}/disable`)
    .set(t.auth)
    .send({ reason: 'suspected misuse' })
    .expect(200);

  const res = await api.http.get(`/v1/service-accounts/${id}/history`).set(t.auditor).expect(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const actor = { type: 'operator', id: expect.stringMatching(/^op_/), name: 'admin-hist-account' };
  expect(res.body).toEqual({
    items: [
      {
        position: expect.any(Number),
        streamId: id,
        version: 1,
        type: 'ServiceAccountCreated',
        occurredAt: '2026-03-01T09:00:00.000Z',
        actor,
        reason: null,
        correlationId: 'create-4711',
        data: expect.objectContaining({
          id,
          tenantId: 'hist-account',
          name: 'nightly-digest-summariser',
          environment: 'production',
          allowedScopes: ['summaries:draft', 'tickets:read'],
        }),
      },
      {
        position: expect.any(Number),
        streamId: id,
        version: 2,
        type: 'ServiceAccountUpdated',
        occurredAt: '2026-03-01T09:01:00.000Z',
        actor,
        reason: 'ticket OPS-12',
        correlationId: 'patch-4712',
        data: { changes: { description: "Summarises yesterday's tickets" } },
      },
      {
        position: expect.any(Number),
        streamId: id,
        version: 3,
        type: 'ServiceAccountDisabled',
        occurredAt: '2026-03-01T09:02:00.000Z',
        actor,
        reason: 'suspected misuse',
        correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        data: {},
      },
    ],
    nextCursor: null,
  });
  const positions = res.body.items.map((e: EventBody) => e.position);
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
  expect(new Set(positions).size).toBe(3);
  // The positions are the stored ones.
  const stored = await api.database.db
    .selectFrom('events')
    .select('position')
    .where('stream_id', '=', id)
    .orderBy('stream_version')
    .execute();
  expect(positions).toEqual(stored.map((r) => Number(r.position)));
  // An admin may read it too.
  await api.http.get(`/v1/service-accounts/${id}/history`).set(t.auth).expect(200);
});

it("answers a key's events, and no history answer ever holds a key's secret", async () => {
  const t = await tenant('hist-key');
  const accountId = await createAccount(t, 'key-history');
  const key = await issueKey(t, accountId);
  const rotated = await api.http
    .post(`/v1/keys/${key.id}/rotate`)
    .set(t.auth)
    .send({ gracePeriodSeconds: 3600, reason: 'quarterly rotation' })
    .expect(201);
  await api.http
    .post(`/v1/keys/${rotated.body.id}/revoke`)
    .set(t.auth)
    .send({ reason: 'leaked in a build log', emergency: true })
    .expect(200);

  const old = await wholeHistory(`/v1/keys/${key.id}/history`, t.auditor);
  expect(old.items.map((e) => [e.version, e.type, e.reason])).toEqual([
    [1, 'KeyIssued', null],
    [2, 'KeyRotated', 'quarterly rotation'],
  ]);
  expect(old.items[0].data).toMatchObject({ id: key.id, serviceAccountId: accountId, prefix: key.prefix });
  expect(old.items[1].data).toEqual({ replacedBy: rotated.body.id, graceEndsAt: '2026-03-01T10:00:00.000Z' });
  const successor = await wholeHistory(`/v1/keys/${rotated.body.id}/history`, t.auditor);
  expect(successor.items.map((e) => [e.type, e.reason])).toEqual([
    ['KeyIssued', 'quarterly rotation'],
    ['KeyRevoked', 'leaked in a build log'],
  ]);
  expect(successor.items[0].data).toMatchObject({ replaces: key.id });
  expect(successor.items[1].data).toEqual({ cause: 'manual', emergency: true });
  const account = await wholeHistory(`/v1/service-accounts/${accountId}/history`, t.auditor);

  // Neither secret, nor the part of it after the visible prefix, is in any answer.
  const texts = [...old.answers, ...successor.answers, ...account.answers].map((res) => res.text);
  for (const issued of [key, rotated.body as { prefix: string; secret: string }]) {
    const secretPart = issued.secret.slice(issued.prefix.length);
    expect(secretPart.length).toBeGreaterThan(30);
    for (const text of texts) expect(text).not.toContain(secretPart);
  }
});

it('pages a history with limit and cursor, oldest first, and the pages join into the whole', async () => {
  const t = await tenant('hist-pages');
  const id = await createAccount(t, 'paged');
  for (let i = 1; i <= 4; i++) {
    await api.http
      .patch(`/v1/service-accounts/${id}`)
      .set(t.auth)
      .send({ description: `change ${i}` })
      .expect(200);
  }
  const whole = await wholeHistory(`/v1/service-accounts/${id}/history`, t.auditor);
  expect(whole.answers).toHaveLength(1);
  expect(whole.items.map((e) => e.version)).toEqual([1, 2, 3, 4, 5]);

  const paged = await wholeHistory(`/v1/service-accounts/${id}/history`, t.auditor, 2);
  expect(paged.answers.map((res) => res.body.items.length)).toEqual([2, 2, 1]);
  expect(paged.answers.map((res) => res.body.nextCursor === null)).toEqual([false, false, true]);
  expect(paged.items).toEqual(whole.items);
  // A page of exactly the rest has no next cursor.
  const exact = await wholeHistory(`/v1/service-accounts/${id}/history`, t.auditor, 5);
  expect(exact.answers).toHaveLength(1);
  expect(exact.answers[0].body.nextCursor).toBeNull();
});

it('keeps the history of a deleted account and of the keys deleting it revoked', async () => {
  const t = await tenant('hist-deleted');
  const id = await createAccount(t, 'gone');
  const key = await issueKey(t, id);
  await api.http
    .delete(`/v1/service-accounts/${id}`)
    .set(t.auth)
    .send({ reason: 'integration retired' })
    .expect(200);
  const account = await wholeHistory(`/v1/service-accounts/${id}/history`, t.auditor);
  expect(account.items.map((e) => e.type)).toEqual(['ServiceAccountCreated', 'ServiceAccountDeleted']);
  expect(account.items[1].reason).toBe('integration retired');
  const keyHistory = await wholeHistory(`/v1/keys/${key.id}/history`, t.auditor);
  expect(keyHistory.items.map((e) => e.type)).toEqual(['KeyIssued', 'KeyRevoked']);
  expect(keyHistory.items[1].data).toMatchObject({ cause: 'account-deleted' });
  // Both changed in one request.
  expect(keyHistory.items[1].correlationId).toBe(account.items[1].correlationId);
});

describe("a caller sees only its own tenant's histories", () => {
  let a: Tenant;
  let b: Tenant;
  let accountId: string;
  let keyId: string;
  beforeAll(async () => {
    a = await tenant('hist-iso-a');
    b = await tenant('hist-iso-b');
    accountId = await createAccount(a, 'isolated');
    keyId = (await issueKey(a, accountId)).id;
  });

  it("answers 404 for another tenant's account or key, exactly as for a missing one", async () => {
    for (const auth of [b.auth, b.auditor]) {
      const account = await api.http.get(`/v1/service-accounts/${accountId}/history`).set(auth);
      expectProblem(account, 404, 'NOT_FOUND');
      const key = await api.http.get(`/v1/keys/${keyId}/history`).set(auth);
      expectProblem(key, 404, 'NOT_FOUND');
      expect(JSON.stringify([account.body, key.body])).not.toContain('hist-iso-a');
    }
    const missingAccount = await api.http
      .get('/v1/service-accounts/sa_00000000000000000000/history')
      .set(b.auth);
    expectProblem(missingAccount, 404, 'NOT_FOUND');
    const foreign = await api.http.get(`/v1/service-accounts/${accountId}/history`).set(b.auth);
    expect(foreign.body).toEqual({
      ...missingAccount.body,
      detail: missingAccount.body.detail.replace('sa_00000000000000000000', accountId),
    });
  });

  it('answers 404 for an unknown or malformed id, and for a key id asked for as an account (and back)', async () => {
    for (const path of [
      '/v1/service-accounts/sa_00000000000000000000/history',
      '/v1/keys/key_00000000000000000000/history',
      '/v1/service-accounts/not-an-id/history',
      '/v1/keys/%00/history',
      `/v1/service-accounts/${keyId}/history`,
      `/v1/keys/${accountId}/history`,
      // The tenant stream and an operator stream are not histories this route shows.
      '/v1/service-accounts/hist-iso-a/history',
    ]) {
      expectProblem(await api.http.get(path).set(a.auditor), 404, 'NOT_FOUND');
    }
  });
});

describe('who may read a history', () => {
  let t: Tenant;
  let accountId: string;
  let keyId: string;
  beforeAll(async () => {
    t = await tenant('hist-roles');
    accountId = await createAccount(t, 'roles');
    keyId = (await issueKey(t, accountId)).id;
  });
  const paths = () => [`/v1/service-accounts/${accountId}/history`, `/v1/keys/${keyId}/history`];

  it('admin and auditor: 200; approver and verifier: 403; the bootstrap token: 403', async () => {
    for (const path of paths()) {
      await api.http.get(path).set(t.auth).expect(200);
      await api.http.get(path).set(t.auditor).expect(200);
      for (const role of ['approver', 'verifier'] as const) {
        expectProblem(await api.http.get(path).set(bearer(await t.token(role))), 403, 'FORBIDDEN');
      }
      expectProblem(await api.http.get(path).set(bearer(BOOTSTRAP_TOKEN)), 403, 'FORBIDDEN');
    }
  });

  it('no credential, or an unknown one: 401', async () => {
    for (const path of paths()) {
      expectProblem(await api.http.get(path), 401, 'UNAUTHENTICATED');
      expectProblem(
        await api.http.get(path).set(bearer('kwop_unknown-token-000000000000')),
        401,
        'UNAUTHENTICATED',
      );
    }
  });

  it('refuses bad paging with 400 VALIDATION_FAILED, naming the field', async () => {
    const feedCursor = Buffer.from(JSON.stringify(['feed', '1', '1'])).toString('base64url');
    for (const path of paths()) {
      for (const [query, field] of [
        ['limit=0', 'limit'],
        ['limit=201', 'limit'],
        ['limit=abc', 'limit'],
        ['limit=1.5', 'limit'],
        ['limit=', 'limit'],
        ['cursor=not-a-cursor', 'cursor'],
        [`cursor=${feedCursor}`, 'cursor'],
        [`cursor=${'a'.repeat(600)}`, 'cursor'],
        ['after=3', 'after'],
        ['cursor=a&cursor=b', 'cursor'],
      ]) {
        const res = await api.http.get(`${path}?${query}`).set(t.auditor);
        expectProblem(res, 400, 'VALIDATION_FAILED');
        expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      }
      await api.http.get(`${path}?limit=1`).set(t.auditor).expect(200);
      await api.http.get(`${path}?limit=200`).set(t.auditor).expect(200);
    }
  });
});
