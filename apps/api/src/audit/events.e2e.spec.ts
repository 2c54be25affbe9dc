import { sql } from 'kysely';
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

/** API.md "History and replay": GET /v1/events, paged JSON and the NDJSON export. */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

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

/**
 * Waits until every committed event of the tenant is below the feed's horizon: sessions of other
 * test files share the cluster's transaction ids and can hold it back for a moment.
 */
async function caughtUp(tenantId: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await sql<{ behind: boolean }>`
      select exists (select 1 from events where tenant_id = ${tenantId}
        and transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) as behind`.execute(api.database.db);
    if (!rows[0].behind) return;
    if (Date.now() > deadline) throw new Error(`the feed of ${tenantId} never caught up`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function positionsInCommitOrder(tenantId: string): Promise<number[]> {
  const rows = await api.database.db
    .selectFrom('events')
    .select('position')
    .where('tenant_id', '=', tenantId)
    .orderBy('transaction_id')
    .orderBy('position')
    .execute();
  return rows.map((r) => Number(r.position));
}

/** Every page of the feed for this query, following nextCursor. */
async function feed(auth: Headers, query: Record<string, string | number> = {}) {
  const items: EventBody[] = [];
  const answers: Response[] = [];
  let cursor: string | null = null;
  do {
    const res: Response = await api.http
      .get('/v1/events')
      .query(cursor ? { ...query, cursor } : query)
      .set(auth)
      .expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
    answers.push(res);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return { items, answers };
}

/** The NDJSON export for this query, as text. */
async function exported(auth: Headers, query: Record<string, string | number> = {}): Promise<Response> {
  return api.http
    .get('/v1/events')
    .query(query)
    .set(auth)
    .set('Accept', 'application/x-ndjson')
    .buffer(true)
    .parse((res, done) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => done(null, text));
    });
}

function lines(res: Response): EventBody[] {
  const text = res.body as string;
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as EventBody);
}

let a: Tenant;
let b: Tenant;
let accountId: string;
let secrets: { prefix: string; secret: string }[];

beforeAll(async () => {
  a = await tenant('feed-a');
  b = await tenant('feed-b');
  const created = await api.http
    .post('/v1/service-accounts')
    .set(a.auth)
    .set('X-Correlation-Id', 'feed-create')
    .send({
      name: 'feed-account',
      environment: 'staging',
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['tickets:read'],
    })
    .expect(201);
  accountId = created.body.id;
  for (const description of ['one', 'two']) {
    await api.http.patch(`/v1/service-accounts/${accountId}`).set(a.auth).send({ description }).expect(200);
  }
  const key = await api.http
    .post(`/v1/service-accounts/${accountId}/keys`)
    .set(a.auth)
    .set('X-Correlation-Id', 'feed-issue')
    .send({ name: 'k', scopes: ['tickets:read'] })
    .expect(201);
  const rotated = await api.http.post(`/v1/keys/${key.body.id}/rotate`).set(a.auth).send({}).expect(201);
  secrets = [key.body, rotated.body];
  await api.http
    .post(`/v1/service-accounts/${accountId}/disable`)
    .set(a.auth)
    .send({ reason: 'paused' })
    .expect(200);
  await api.http
    .post('/v1/service-accounts')
    .set(b.auth)
    .send({
      name: 'other-tenant',
      environment: 'staging',
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['tickets:read'],
    })
    .expect(201);
  await caughtUp('feed-a');
  await caughtUp('feed-b');
});

it("answers the tenant's events in commit order, a page at a time, as history shows them", async () => {
  const expected = await positionsInCommitOrder('feed-a');
  expect(expected.length).toBeGreaterThan(8);
  const paged = await feed(a.auditor, { limit: 3 });
  expect(paged.items.map((e) => e.position)).toEqual(expected);
  expect(paged.answers.every((res) => res.body.items.length <= 3)).toBe(true);
  expect(paged.answers[paged.answers.length - 1].body.nextCursor).toBeNull();
  // The default page (50) holds them all.
  const whole = await feed(a.auditor);
  expect(whole.answers).toHaveLength(1);
  expect(whole.items).toEqual(paged.items);
  // The same events, field for field, as the account's history.
  const history = await api.http.get(`/v1/service-accounts/${accountId}/history`).set(a.auditor).expect(200);
  expect(whole.items.filter((e) => e.streamId === accountId)).toEqual(history.body.items);
  expect(whole.items.map((e) => e.type)).toEqual(
    expect.arrayContaining([
      'TenantCreated',
      'OperatorCreated',
      'ServiceAccountCreated',
      'KeyIssued',
      'KeyRotated',
    ]),
  );

  // The other tenant sees its own events only.
  const other = await feed(b.auditor);
  expect(other.items.map((e) => e.position)).toEqual(await positionsInCommitOrder('feed-b'));
  expect(other.items.some((e) => expected.includes(e.position))).toBe(false);
});

it('after=<position> continues strictly after that event; 0 starts at the beginning', async () => {
  const all = (await feed(a.auditor)).items;
  const third = all[2];
  expect((await feed(a.auditor, { after: third.position })).items).toEqual(all.slice(3));
  expect((await feed(a.auditor, { after: 0 })).items).toEqual(all);
  expect((await feed(a.auditor, { after: all[all.length - 1].position })).items).toEqual([]);
  // A next cursor continues after its page, whatever after= the caller keeps repeating.
  const first = await api.http
    .get('/v1/events')
    .query({ after: third.position, limit: 2 })
    .set(a.auditor)
    .expect(200);
  const next = await api.http
    .get('/v1/events')
    .query({ after: third.position, limit: 2, cursor: first.body.nextCursor })
    .set(a.auditor)
    .expect(200);
  expect([...first.body.items, ...next.body.items]).toEqual(all.slice(3, 7));
});

it("refuses an after= that is not one of the tenant's events, another tenant's included", async () => {
  const foreign = (await feed(b.auditor)).items[0].position;
  for (const after of [foreign, 999_999_999]) {
    const res = await api.http.get('/v1/events').query({ after }).set(a.auditor);
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual([{ field: 'after', message: expect.any(String) }]);
    expect(res.text).not.toContain('feed-b');
  }
});

it('filters by one type, by several comma-separated types and by correlation id', async () => {
  const all = (await feed(a.auditor)).items;
  expect((await feed(a.auditor, { type: 'ServiceAccountUpdated' })).items).toEqual(
    all.filter((e) => e.type === 'ServiceAccountUpdated'),
  );
  const several = (await feed(a.auditor, { type: 'KeyIssued,ServiceAccountDisabled', limit: 1 })).items;
  expect(several.map((e) => e.type)).toEqual(['KeyIssued', 'KeyIssued', 'ServiceAccountDisabled']);
  expect(several).toEqual(all.filter((e) => ['KeyIssued', 'ServiceAccountDisabled'].includes(e.type)));
  const issued = (await feed(a.auditor, { correlationId: 'feed-issue' })).items;
  expect(issued.map((e) => e.type)).toEqual(['KeyIssued']);
  expect(issued[0].correlationId).toBe('feed-issue');
  expect((await feed(a.auditor, { correlationId: 'feed-create', type: 'KeyIssued' })).items).toEqual([]);
  expect((await feed(a.auditor, { type: 'NoSuchEvent' })).items).toEqual([]);
  // Another tenant's correlation id finds nothing here.
  expect((await feed(b.auditor, { correlationId: 'feed-issue' })).items).toEqual([]);
});

it('with Accept: application/x-ndjson streams every matching event, one JSON object a line', async () => {
  const all = (await feed(a.auditor)).items;
  const res = await exported(a.auditor);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
  expect(lines(res)).toEqual(all);
  // The export is not a page: limit does not cut it; after= and the filters apply.
  expect(lines(await exported(a.auditor, { limit: 1 }))).toEqual(all);
  expect(lines(await exported(a.auditor, { after: all[4].position }))).toEqual(all.slice(5));
  expect(lines(await exported(a.auditor, { type: 'KeyIssued,KeyRotated' }))).toEqual(
    all.filter((e) => e.type === 'KeyIssued' || e.type === 'KeyRotated'),
  );
  const none = await exported(a.auditor, { type: 'NoSuchEvent' });
  expect(none.status).toBe(200);
  expect(none.body).toBe('');
  expect(lines(await exported(b.auditor))).toEqual((await feed(b.auditor)).items);
});

it("no answer of the feed or the export holds a key's secret", async () => {
  const texts = [...(await feed(a.auditor, { limit: 2 })).answers.map((res) => res.text)];
  texts.push((await exported(a.auditor)).body as string);
  for (const { prefix, secret } of secrets) {
    const secretPart = secret.slice(prefix.length);
    expect(secretPart.length).toBeGreaterThan(30);
    for (const text of texts) expect(text).not.toContain(secretPart);
  }
});

describe('who may read the feed and the integrity check', () => {
  const routes = ['/v1/events', '/v1/audit/integrity'];

  it('admin and auditor: 200 (the export too); approver and verifier: 403; bootstrap: 403; none: 401', async () => {
    for (const path of routes) {
      await api.http.get(path).set(a.auth).expect(200);
      await api.http.get(path).set(a.auditor).expect(200);
      for (const role of ['approver', 'verifier'] as const) {
        expectProblem(await api.http.get(path).set(bearer(await a.token(role))), 403, 'FORBIDDEN');
      }
      expectProblem(await api.http.get(path).set(bearer(BOOTSTRAP_TOKEN)), 403, 'FORBIDDEN');
      expectProblem(await api.http.get(path), 401, 'UNAUTHENTICATED');
    }
    const verifier = await api.http
      .get('/v1/events')
      .set(bearer(await a.token('verifier')))
      .set('Accept', 'application/x-ndjson');
    expectProblem(verifier, 403, 'FORBIDDEN');
    expect((await exported(a.auditor)).status).toBe(200);
  });

  it('refuses a query on the integrity check, which takes none', async () => {
    const res = await api.http.get('/v1/audit/integrity?tenantId=feed-b').set(a.auditor);
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual([{ field: 'tenantId', message: 'tenantId is not a known field' }]);
  });

  it('answers integrity of the tenant', async () => {
    const res = await api.http.get('/v1/audit/integrity').set(a.auditor).expect(200);
    expect(res.body).toEqual({
      ok: true,
      checked: (await positionsInCommitOrder('feed-a')).length,
      brokenAt: null,
    });
  });
});

it('refuses bad query input with 400 VALIDATION_FAILED naming the field, as JSON and as NDJSON', async () => {
  const historyCursor = Buffer.from(JSON.stringify(['history', '1'])).toString('base64url');
  const cases: [string, string][] = [
    ['limit=0', 'limit'],
    ['limit=201', 'limit'],
    ['limit=ten', 'limit'],
    ['after=-1', 'after'],
    ['after=abc', 'after'],
    ['after=1.5', 'after'],
    ['after=', 'after'],
    ['after=1234567890123456789', 'after'],
    ['after=1&after=2', 'after'],
    ['type=', 'type'],
    ['type=Key Issued', 'type'],
    ['type=KeyIssued,', 'type'],
    [`type=${Array.from({ length: 21 }, (_, i) => `T${i}`).join(',')}`, 'type'],
    ['type=KeyIssued&type=KeyRevoked', 'type'],
    ['correlationId=has spaces', 'correlationId'],
    ['correlationId=%00', 'correlationId'],
    [`correlationId=${'c'.repeat(129)}`, 'correlationId'],
    ['cursor=garbage', 'cursor'],
    [`cursor=${historyCursor}`, 'cursor'],
    ['since=1', 'since'],
  ];
  for (const [query, field] of cases) {
    for (const accept of ['application/json', 'application/x-ndjson']) {
      const res = await api.http.get(`/v1/events?${query}`).set(a.auditor).set('Accept', accept);
      expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  }
  // The bounds themselves are fine.
  await api.http.get('/v1/events?limit=1').set(a.auditor).expect(200);
  await api.http.get('/v1/events?limit=200&after=0').set(a.auditor).expect(200);
});
