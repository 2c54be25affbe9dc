import { sql } from 'kysely';
import type { Database } from '@keyward/db';
import type { InlineProjection } from '@keyward/event-store';
import { bearer, createTenant, startTestApi, type TestApi } from '../../../test/support/api';
import { findProjection } from './find';
import { inlineProjections } from './inline-projections';
import { rebuildProjection } from './rebuild';
import { projectionStatus } from './status';

/**
 * A rebuild while the API serves traffic: reads never see an empty or partial table, appends
 * made during the rebuild are in the rebuilt rows, and the rebuilt rows equal what the events say.
 */
let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});

async function createAccounts(admin: Record<string, string>, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await api.http
      .post('/v1/service-accounts')
      .set(admin)
      .send({
        name: `acct-${i}`,
        environment: 'staging',
        businessOwner: 'ops',
        technicalOwner: 'platform',
        allowedScopes: ['a:read'],
      })
      .expect(201);
  }
}

async function rows(table: 'service_accounts' | 'keys') {
  return api.database.db.selectFrom(table).selectAll().orderBy('id').execute();
}

it('builds beside and swaps: readers never see an empty table, concurrent appends are kept', async () => {
  const t = await createTenant(api, 'rebuild-live');
  const admin = bearer(t.admin);
  await createAccounts(admin, 0, 150);
  // A damaged row: the rebuild must repair it from the events.
  await api.database.db
    .updateTable('service_accounts')
    .set({ name: 'damaged' })
    .where('name', '=', 'acct-3')
    .execute();

  let stop = false;
  const seen: number[] = [];
  const reader = (async () => {
    while (!stop) {
      const res = await api.http.get('/v1/service-accounts?limit=200').set(admin);
      expect(res.status).toBe(200);
      seen.push(res.body.items.length);
    }
  })();
  const writer = createAccounts(admin, 150, 30);
  const projection = findProjection('service-accounts');
  // Reads answered so far, at each step of the build: they must go on while the copies are built
  // (a rebuild that truncated the live tables in one transaction would hold every read until it
  // committed).
  const readsAtStep: number[] = [];
  const progress: number[] = [];
  let result;
  try {
    result = await rebuildProjection(
      api.database.db,
      projection,
      (n) => {
        progress.push(n);
        readsAtStep.push(seen.length);
      },
      { batchSize: 10 },
    );
    await writer;
  } finally {
    stop = true;
    await reader;
  }

  expect(result.projection).toBe('service-accounts');
  expect(result.events).toBeGreaterThanOrEqual(150);
  expect(progress.length).toBeGreaterThan(10);
  expect(readsAtStep.at(-1)! - readsAtStep[0]).toBeGreaterThan(0);
  // Every read during the rebuild saw at least every account made before it began.
  expect(seen.length).toBeGreaterThan(0);
  expect(Math.min(...seen)).toBeGreaterThanOrEqual(150);

  const after = await rows('service_accounts');
  expect(after).toHaveLength(180);
  expect(after.find((r) => r.name === 'damaged')).toBeUndefined();
  // A second rebuild with nothing changed gives the same rows: the rows follow from the events.
  await rebuildProjection(api.database.db, projection);
  expect(await rows('service_accounts')).toEqual(after);
});

it('keeps the index and constraint names, so a duplicate name is still a 409 after a rebuild', async () => {
  const names = async () =>
    (
      await sql<{ name: string }>`
        select indexname as name from pg_indexes
        where schemaname = 'public' and tablename in ('service_accounts', 'keys', 'signals')
        order by indexname`.execute(api.database.db)
    ).rows.map((r) => r.name);
  const before = await names();
  for (const name of ['service-accounts', 'keys', 'signals']) {
    await rebuildProjection(api.database.db, findProjection(name));
  }
  expect(await names()).toEqual(before);

  const t = await createTenant(api, 'rb-names');
  const body = { name: 'twice', environment: 'staging', businessOwner: 'o', technicalOwner: 't' };
  await api.http.post('/v1/service-accounts').set(bearer(t.admin)).send(body).expect(201);
  // Past the name check, into the unique index: racing creates, as the duplicate-name race test does.
  const raced = await Promise.all(
    [1, 2, 3].map(() =>
      api.http
        .post('/v1/service-accounts')
        .set(bearer(t.admin))
        .send({ ...body, name: 'raced' }),
    ),
  );
  expect(raced.map((r) => r.status).sort()).toEqual([201, 409, 409]);
});

it('keeps the grants of the live tables and leaves no schema behind', async () => {
  await rebuildProjection(api.database.db, findProjection('keys'));
  const grants = await sql<{ privilege_type: string }>`
    select privilege_type from information_schema.role_table_grants
    where table_schema = 'public' and table_name = 'keys' and grantee = 'keyward_app'
    order by privilege_type`.execute(api.database.db);
  expect(grants.rows.map((g) => g.privilege_type)).toEqual([
    'DELETE',
    'INSERT',
    'SELECT',
    'TRUNCATE',
    'UPDATE',
  ]);
  const schemas = await sql<{ n: number }>`
    select count(*)::int as n from information_schema.schemata where schema_name like 'kw\\_%'`.execute(
    api.database.db,
  );
  expect(schemas.rows[0].n).toBe(0);
});

it('two rebuilds of one projection at once both finish, one after the other', async () => {
  const t = await createTenant(api, 'rebuild-twice');
  await createAccounts(bearer(t.admin), 1000, 5);
  const before = await rows('service_accounts');
  const projection = findProjection('service-accounts');
  await Promise.all([
    rebuildProjection(api.database.db, projection),
    rebuildProjection(api.database.db, projection),
  ]);
  expect(await rows('service_accounts')).toEqual(before);
});

it('reports each projection: rows, checkpoint at the head of the feed, no lag, the last rebuild', async () => {
  const t = await createTenant(api, 'rebuild-status');
  await createAccounts(bearer(t.admin), 2000, 2);
  await rebuildProjection(api.database.db, findProjection('service-accounts'));
  const head = await sql<{ p: string }>`select max(position)::text as p from events`.execute(api.database.db);
  const status = await projectionStatus(api.database.db);
  expect(status.map((s) => s.name)).toEqual(inlineProjections.map((p) => p.name));
  const accounts = status.find((s) => s.name === 'service-accounts')!;
  const counted = await api.database.db
    .selectFrom('service_accounts')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  expect(accounts).toEqual(
    expect.objectContaining({
      kind: 'inline',
      tables: ['service_accounts'],
      rows: Number(counted.n),
      checkpoint: head.rows[0].p,
      lag: 0,
      lastRebuild: { at: expect.any(String), position: head.rows[0].p },
    }),
  );
});

describe("one tenant's rebuild", () => {
  /**
   * Every row of `projection`'s tables outside `tenantId`, as its physical place, its row version
   * and its text: equal lists mean those rows were not written at all, not merely rewritten alike.
   */
  async function othersTuples(projection: InlineProjection, tenantId: string): Promise<string[]> {
    const out: string[] = [];
    for (const table of projection.tables) {
      const column = projection.tenantColumns?.[table] ?? 'tenant_id';
      const rows = await sql<{ row: string }>`
        select concat_ws(' ', ctid, xmin, t) as row from ${sql.table(table)} t
        where ${sql.ref(column)} <> ${tenantId} order by 1`.execute(api.database.db);
      out.push(...rows.rows.map((r) => `${table} ${r.row}`));
    }
    return out;
  }

  async function tenantRows(table: keyof Database & ('service_accounts' | 'keys'), tenantId: string) {
    return api.database.db
      .selectFrom(table)
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('id')
      .execute();
  }

  async function eventsOf(tenantId: string): Promise<number> {
    const row = await api.database.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('tenant_id', '=', tenantId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  it("repairs that tenant's rows from its own events and leaves every other tenant's rows as they were", async () => {
    const a = await createTenant(api, 'rb-one-a');
    const b = await createTenant(api, 'rb-one-b');
    await createAccounts(bearer(a.admin), 3000, 20);
    await createAccounts(bearer(b.admin), 3100, 20);
    const aBefore = await tenantRows('service_accounts', a.tenantId);
    // Damage in both tenants: only the rebuilt tenant's is repaired.
    await api.database.db
      .updateTable('service_accounts')
      .set({ name: 'damaged' })
      .where('name', 'in', ['acct-3001', 'acct-3101'])
      .execute();
    await api.database.db
      .deleteFrom('service_accounts')
      .where('name', 'in', ['acct-3002', 'acct-3102'])
      .execute();
    const projection = findProjection('service-accounts');
    const others = await othersTuples(projection, a.tenantId);
    expect(others.some((r) => r.includes('damaged'))).toBe(true);

    const result = await rebuildProjection(api.database.db, projection, undefined, {
      tenantId: a.tenantId,
      batchSize: 7,
    });

    // Replayed: that tenant's events and no other's.
    expect(result).toEqual({
      projection: 'service-accounts',
      tenantId: a.tenantId,
      events: await eventsOf(a.tenantId),
    });
    expect(await tenantRows('service_accounts', a.tenantId)).toEqual(aBefore);
    expect(await othersTuples(projection, a.tenantId)).toEqual(others);
    const b2 = await tenantRows('service_accounts', b.tenantId);
    expect(b2).toHaveLength(19);
    expect(b2.filter((r) => r.name === 'damaged')).toHaveLength(1);
  });

  it('keeps the appends of every tenant made while it runs; readers never miss a row', async () => {
    const a = await createTenant(api, 'rb-live-a');
    const b = await createTenant(api, 'rb-live-b');
    await createAccounts(bearer(a.admin), 4000, 60);
    await createAccounts(bearer(b.admin), 4100, 10);
    let stop = false;
    const seen: number[] = [];
    const reader = (async () => {
      while (!stop) {
        const res = await api.http.get('/v1/service-accounts?limit=200').set(bearer(a.admin));
        expect(res.status).toBe(200);
        seen.push(res.body.items.length);
      }
    })();
    const writers = Promise.all([
      createAccounts(bearer(a.admin), 4060, 15),
      createAccounts(bearer(b.admin), 4110, 15),
    ]);
    try {
      await rebuildProjection(api.database.db, findProjection('service-accounts'), undefined, {
        tenantId: a.tenantId,
        batchSize: 5,
      });
      await writers;
    } finally {
      stop = true;
      await reader;
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(60);
    const aRows = await tenantRows('service_accounts', a.tenantId);
    expect(aRows).toHaveLength(75);
    expect(await tenantRows('service_accounts', b.tenantId)).toHaveLength(25);
    // What the rebuild left is what the events say: a full rebuild now changes nothing.
    await rebuildProjection(api.database.db, findProjection('service-accounts'));
    expect(await tenantRows('service_accounts', a.tenantId)).toEqual(aRows);
  });

  it('touches no other tenant in any projection, the tenants table (keyed by id) included', async () => {
    const a = await createTenant(api, 'rb-all-a');
    const b = await createTenant(api, 'rb-all-b');
    for (const t of [a, b]) {
      const account = await api.http
        .post('/v1/service-accounts')
        .set(bearer(t.admin))
        .send({
          name: 'keyed-acct',
          environment: 'staging',
          businessOwner: 'o',
          technicalOwner: 't',
          allowedScopes: ['a:read'],
        })
        .expect(201);
      await api.http
        .post(`/v1/service-accounts/${account.body.id}/keys`)
        .set(bearer(t.admin))
        .send({ name: 'key-one', scopes: ['a:read'] })
        .expect(201);
      await api.http.patch('/v1/policy').set(bearer(t.admin)).send({ unusedAfterDays: 30 }).expect(200);
    }
    const aKeys = await tenantRows('keys', a.tenantId);
    await api.database.db.updateTable('keys').set({ name: 'damaged' }).execute();
    for (const projection of inlineProjections) {
      const others = await othersTuples(projection, a.tenantId);
      await rebuildProjection(api.database.db, projection, undefined, { tenantId: a.tenantId });
      expect({ projection: projection.name, rows: await othersTuples(projection, a.tenantId) }).toEqual({
        projection: projection.name,
        rows: others,
      });
    }
    expect(await tenantRows('keys', a.tenantId)).toEqual(aKeys);
    expect((await tenantRows('keys', b.tenantId)).map((k) => k.name)).toEqual(['damaged']);
    const tenantsRow = await api.database.db
      .selectFrom('tenants')
      .selectAll()
      .where('id', '=', a.tenantId)
      .execute();
    expect(tenantsRow).toHaveLength(1);
  });
});
