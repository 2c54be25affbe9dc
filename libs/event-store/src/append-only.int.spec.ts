import { Client } from 'pg';
import { sql } from 'kysely';
import { systemClock } from '@keyward/core';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import { EventStore, type EventMetadata } from '.';

let t: TestDatabase;
let store: EventStore;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new EventStore(t.db, [], systemClock);
  const meta: EventMetadata = {
    actor: { type: 'system', id: 's', name: 's' },
    reason: null,
    correlationId: 'c',
  };
  await store.append(
    [
      {
        tenantId: 'tenant-1',
        streamId: 'history-1',
        streamType: 'ServiceAccount',
        expectedVersion: 0,
        events: [
          { type: 'ServiceAccountCreated', data: { name: 'billing' } },
          { type: 'KeyIssued', data: { keyId: 'key_1' } },
        ],
      },
    ],
    meta,
  );
  await store.append(
    [
      {
        tenantId: 'tenant-2',
        streamId: 'history-2',
        streamType: 'ServiceAccount',
        expectedVersion: 0,
        events: [{ type: 'ServiceAccountCreated', data: { name: 'ledger' } }],
      },
    ],
    meta,
  );
});
afterAll(async () => {
  await t.drop();
});

const history = () => t.db.selectFrom('events').selectAll().orderBy('position').execute();

describe('the events table refuses every change to history, even from its owner', () => {
  it('refuses UPDATE with the trigger error and changes no row', async () => {
    const before = await history();
    await expect(
      sql`update events set data = '{"name":"forged"}'::jsonb where stream_id = 'history-1'`.execute(t.db),
    ).rejects.toMatchObject({ code: 'P0001', message: 'events are append-only: UPDATE refused' });
    await expect(t.db.updateTable('events').set({ type: 'Forged' }).execute()).rejects.toMatchObject({
      code: 'P0001',
      message: 'events are append-only: UPDATE refused',
    });
    expect(await history()).toEqual(before);
  });

  it('refuses DELETE with the trigger error and deletes no row', async () => {
    const before = await history();
    await expect(
      t.db.deleteFrom('events').where('stream_id', '=', 'history-1').execute(),
    ).rejects.toMatchObject({
      code: 'P0001',
      message: 'events are append-only: DELETE refused',
    });
    await expect(sql`delete from events`.execute(t.db)).rejects.toMatchObject({
      message: 'events are append-only: DELETE refused',
    });
    expect(await history()).toEqual(before);
    expect(before).toHaveLength(3);
  });

  it('refuses TRUNCATE with the trigger error and keeps every row', async () => {
    const before = await history();
    await expect(sql`truncate events`.execute(t.db)).rejects.toMatchObject({
      code: 'P0001',
      message: 'events are append-only: TRUNCATE refused',
    });
    await expect(sql`truncate events, streams, chain_heads`.execute(t.db)).rejects.toMatchObject({
      message: 'events are append-only: TRUNCATE refused',
    });
    expect(await history()).toEqual(before);
    expect(await t.db.selectFrom('streams').select('stream_id').execute()).toHaveLength(2);
  });

  it('still takes appends', async () => {
    const before = await history();
    await store.append(
      [
        {
          tenantId: 'tenant-1',
          streamId: 'history-1',
          streamType: 'ServiceAccount',
          expectedVersion: 2,
          events: [{ type: 'KeyRevoked', data: { keyId: 'key_1' } }],
        },
      ],
      { actor: { type: 'system', id: 's', name: 's' }, reason: 'test', correlationId: 'c2' },
    );
    const after = await history();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 1);
  });
});

describe("the application role's grants", () => {
  it('let keyward_app read and append events, never update, delete or truncate them', async () => {
    const { rows } = await sql<{ privilege: string; granted: boolean }>`
      select p as privilege, has_table_privilege('keyward_app', 'events', p) as granted
      from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) as p`.execute(t.db);
    expect(Object.fromEntries(rows.map((r) => [r.privilege, r.granted]))).toEqual({
      SELECT: true,
      INSERT: true,
      UPDATE: false,
      DELETE: false,
      TRUNCATE: false,
    });
  });

  it('refuse keyward_app an UPDATE, DELETE or TRUNCATE before any trigger runs', async () => {
    const before = await history();
    const client = new Client({ connectionString: t.url });
    await client.connect();
    try {
      for (const statement of [
        `update events set type = 'Forged'`,
        `delete from events`,
        `truncate events`,
      ]) {
        await client.query('begin');
        await client.query('set local role keyward_app');
        // The role may read what it may not change.
        const { rows } = await client.query<{ n: number }>('select count(*)::int as n from events');
        expect(rows[0].n).toBe(before.length);
        await expect(client.query(statement)).rejects.toMatchObject({
          code: '42501',
          message: 'permission denied for table events',
        });
        await client.query('rollback');
      }
    } finally {
      await client.end();
    }
    expect(await history()).toEqual(before);
  });
});
