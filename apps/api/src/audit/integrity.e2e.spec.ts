import { sql, type RawBuilder } from 'kysely';
import type { EventRow } from '@keyward/db';
import {
  bearer,
  createTenant,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * API.md "History and replay": GET /v1/audit/integrity finds events edited, deleted or reordered in
 * the database behind the service's back. The test's connection is the database owner (a
 * superuser here), the one role that can switch the append-only trigger off; the application
 * role could not change a row at all.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

interface Chain {
  tenantId: string;
  auditor: Record<string, string>;
  /** The tenant's events as stored, in position order. */
  rows: EventRow[];
}

/** A tenant with an operator, an account and a few changes to it: eight or so chained events. */
async function chain(tenantId: string): Promise<Chain> {
  const fixture = await createTenant(api, tenantId);
  const auth = bearer(fixture.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: 'chained',
      environment: 'production',
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['tickets:read'],
    })
    .expect(201);
  for (let i = 1; i <= 4; i++) {
    api.clock.advance(60_000);
    await api.http
      .patch(`/v1/service-accounts/${account.body.id}`)
      .set(auth)
      .send({ description: `change ${i}`, reason: `step ${i}` })
      .expect(200);
  }
  const auditor = bearer(await fixture.token('auditor'));
  return { tenantId, auditor, rows: await rowsOf(tenantId) };
}

async function rowsOf(tenantId: string): Promise<EventRow[]> {
  return api.database.db
    .selectFrom('events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('position')
    .execute();
}

async function integrity(c: Chain) {
  const res = await api.http.get('/v1/audit/integrity').set(c.auditor).expect(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.body as { ok: boolean; checked: number; brokenAt: number | null };
}

/** Runs statements with the append-only trigger off, as only the owner can, and turns it back on. */
async function tamper(...statements: RawBuilder<unknown>[]): Promise<void> {
  const db = api.database.db;
  await sql`alter table events disable trigger events_append_only`.execute(db);
  try {
    for (const statement of statements) await statement.execute(db);
  } finally {
    await sql`alter table events enable trigger events_append_only`.execute(db);
  }
}

const position = (row: EventRow) => Number(row.position);

it('answers ok for an untouched chain, counting every event of the tenant', async () => {
  const c = await chain('intact');
  expect(c.rows.length).toBeGreaterThanOrEqual(8);
  expect(await integrity(c)).toEqual({ ok: true, checked: c.rows.length, brokenAt: null });
});

it('finds an edited payload at the edited event, while the tenant beside it stays ok', async () => {
  const c = await chain('edited-data');
  const neighbour = await chain('edited-data-neighbour');
  const victim = c.rows[5];
  expect(victim.type).toBe('ServiceAccountUpdated');
  await tamper(
    sql`update events set data = '{"changes":{"description":"nothing to see"}}'::jsonb
        where position = ${victim.position}`,
  );
  expect(await integrity(c)).toEqual({ ok: false, checked: 6, brokenAt: position(victim) });
  expect(await integrity(neighbour)).toEqual({ ok: true, checked: neighbour.rows.length, brokenAt: null });
});

it('finds an edited occurred_at at the edited event', async () => {
  const c = await chain('edited-time');
  const victim = c.rows[4];
  await tamper(
    sql`update events set occurred_at = occurred_at - interval '1 day' where position = ${victim.position}`,
  );
  expect(await integrity(c)).toEqual({ ok: false, checked: 5, brokenAt: position(victim) });
});

it('finds a deleted event in the middle at the event after the gap', async () => {
  const c = await chain('deleted-middle');
  await tamper(sql`delete from events where position = ${c.rows[3].position}`);
  expect(await integrity(c)).toEqual({ ok: false, checked: 4, brokenAt: position(c.rows[4]) });
});

it('finds two events whose contents were swapped, at the first of the two', async () => {
  const c = await chain('swapped-content');
  const [first, second] = [c.rows[3], c.rows[6]];
  // What happened, and when, trade places; the chain fields stay where they were.
  await tamper(
    sql`update events e set type = o.type, data = o.data, metadata = o.metadata, occurred_at = o.occurred_at
        from events o
        where (e.position, o.position) in ((${first.position}, ${second.position}), (${second.position}, ${first.position}))`,
  );
  const swapped = await rowsOf(c.tenantId);
  expect(swapped[3].data).toEqual(second.data);
  expect(swapped[6].data).toEqual(first.data);
  expect(await integrity(c)).toEqual({ ok: false, checked: 4, brokenAt: position(first) });
});

it('finds two neighbouring rows swapped whole, hashes and chain numbers included, at the first of the two', async () => {
  const c = await chain('swapped-rows');
  const [first, second] = [c.rows[4], c.rows[5]];
  // Every column but the position trades places, so each event is intact on its own and only
  // the order is forged. The unique columns go through a free value first.
  const columns = (row: EventRow) => sql`
    transaction_id = ${row.transaction_id}::xid8, tenant_id = ${row.tenant_id}, stream_id = ${row.stream_id},
    stream_type = ${row.stream_type}, stream_version = ${row.stream_version}, event_id = ${row.event_id},
    type = ${row.type}, schema_version = ${row.schema_version}, data = ${JSON.stringify(row.data)}::jsonb,
    metadata = ${JSON.stringify(row.metadata)}::jsonb, occurred_at = ${row.occurred_at},
    chain_seq = ${row.chain_seq}, prev_hash = ${row.prev_hash}, hash = ${row.hash}`;
  await tamper(
    sql`update events set event_id = gen_random_uuid(), stream_version = -stream_version, chain_seq = -chain_seq
        where position = ${first.position}`,
    sql`update events set ${columns(first)} where position = ${second.position}`,
    sql`update events set ${columns(second)} where position = ${first.position}`,
  );
  const swapped = await rowsOf(c.tenantId);
  expect(swapped[4]).toEqual({ ...second, position: first.position });
  expect(swapped[5]).toEqual({ ...first, position: second.position });
  expect(await integrity(c)).toEqual({ ok: false, checked: 5, brokenAt: position(first) });
});

it('finds the newest event deleted, by the chain head, at the last event left', async () => {
  const c = await chain('deleted-newest');
  const newest = c.rows[c.rows.length - 1];
  await tamper(sql`delete from events where position = ${newest.position}`);
  expect(await integrity(c)).toEqual({
    ok: false,
    checked: c.rows.length - 1,
    brokenAt: position(c.rows[c.rows.length - 2]),
  });
});
