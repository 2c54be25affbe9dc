import { Client } from 'pg';
import { sql } from 'kysely';
import { Conflict, ManualClock, systemClock } from '@keyward/core';
import { createDb, type Db } from '@keyward/db';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import {
  EventStore,
  GENESIS_HASH,
  StreamVersionConflict,
  checkChain,
  toRecordedEvent,
  type EventMetadata,
  type ExpectedVersion,
  type InlineProjection,
  type NewEvent,
  type PendingEvent,
  type RecordedEvent,
  type StreamAppend,
} from '.';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

function meta(overrides: Partial<EventMetadata> = {}): EventMetadata {
  return {
    actor: { type: 'operator', id: 'op_test', name: 'Test Operator' },
    reason: null,
    correlationId: 'corr-test',
    ...overrides,
  };
}

function streamAppend(
  streamId: string,
  expectedVersion: ExpectedVersion,
  events: NewEvent[],
  tenantId = 'tenant-1',
): StreamAppend {
  return { tenantId, streamId, streamType: 'ServiceAccount', expectedVersion, events };
}

function marked(count: number, marker: Record<string, unknown>): NewEvent[] {
  return Array.from({ length: count }, (_, i) => ({ type: 'Marked', data: { ...marker, i } }));
}

/**
 * Resolves for everyone once `parties` callers have arrived: proves that many transactions (or
 * callers) were in flight at once. Rejects instead of hanging when they never all arrive.
 */
function barrier(parties: number, what: string): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  let fail!: (error: Error) => void;
  const open = new Promise<void>((resolve, reject) => {
    release = resolve;
    fail = reject;
  });
  const timer = setTimeout(() => fail(new Error(`${what}: only ${arrived} of ${parties} arrived`)), 15_000);
  open.then(
    () => clearTimeout(timer),
    () => undefined,
  );
  return () => {
    arrived += 1;
    if (arrived === parties) release();
    return open;
  };
}

async function streamRows(streamId: string) {
  return t.db
    .selectFrom('events')
    .selectAll()
    .where('stream_id', '=', streamId)
    .orderBy('position')
    .execute();
}

async function allStreams() {
  return t.db.selectFrom('streams').selectAll().orderBy('stream_id').execute();
}

async function settle<T>(promises: Promise<T>[]) {
  const results = await Promise.allSettled(promises);
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ index: i, value: r.value }] : []));
  const lost = results.flatMap((r, i) =>
    r.status === 'rejected' ? [{ index: i, reason: r.reason as unknown }] : [],
  );
  return { won, lost };
}

describe('concurrent appends', () => {
  let wide: Db;
  beforeAll(() => {
    wide = createDb(t.url, { max: 25, applicationName: 'keyward-test-wide' });
  });
  afterAll(async () => {
    await wide.destroy();
  });

  it('20 appenders on 20 distinct streams all succeed, each stream holding exactly its events', async () => {
    const appenders = 20;
    const rounds = 5;
    // Every appender's first transaction waits inside the append until all 20 are inside theirs:
    // passing it proves the 20 appends were open at the same time and none blocked another.
    const allInside = barrier(appenders, 'first appends in flight');
    const gate: InlineProjection = {
      name: 'barrier',
      tables: [],
      apply: async (_trx, events) => {
        if (events.some((e) => (e.data as { first?: boolean }).first)) await allInside();
      },
    };
    const store = new EventStore(wide, [gate], systemClock);

    await Promise.all(
      Array.from({ length: appenders }, async (_, a) => {
        const streamId = `distinct-${a}`;
        const tenantId = `tenant-${a % 4}`;
        let version = 0;
        for (let r = 0; r < rounds; r++) {
          const count = r === 0 ? 2 : 1;
          const events = Array.from({ length: count }, (_, i) => ({
            type: 'Marked',
            data: { appender: a, round: r, i, first: r === 0 },
          }));
          const recorded = await store.append([streamAppend(streamId, version, events, tenantId)], meta());
          expect(recorded.map((e) => e.streamVersion)).toEqual(events.map((_, i) => version + i + 1));
          version += count;
        }
      }),
    );

    for (let a = 0; a < appenders; a++) {
      const events = await store.readStream(`distinct-${a}`);
      expect(events.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(events.every((e) => (e.data as { appender: number }).appender === a)).toBe(true);
      expect(events.map((e) => (e.data as { round: number }).round)).toEqual([0, 0, 1, 2, 3, 4]);
      expect(new Set(events.map((e) => e.tenantId))).toEqual(new Set([`tenant-${a % 4}`]));
      expect(await store.streamVersion(`distinct-${a}`)).toBe(6);
    }
    const { count } = await t.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('stream_id', 'like', 'distinct-%')
      .executeTakeFirstOrThrow();
    expect(Number(count)).toBe(appenders * 6);
  });

  it('20 appenders on one new stream, all expecting version 0: one wins, 19 get StreamVersionConflict', async () => {
    const store = new EventStore(wide, [], systemClock);
    const streamId = 'race-new';
    const { won, lost } = await settle(
      Array.from({ length: 20 }, (_, racer) =>
        store.append([streamAppend(streamId, 0, marked(2, { racer }))], meta()),
      ),
    );

    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    for (const { reason } of lost) {
      expect(reason).toBeInstanceOf(StreamVersionConflict);
      expect(reason).toBeInstanceOf(Conflict);
      expect(reason).toMatchObject({ streamId, expectedVersion: 0, actualVersion: 2 });
      expect((reason as Conflict).versions).toEqual({ expectedVersion: 0, actualVersion: 2 });
      expect((reason as Error).message).toBe('stream race-new is at version 2, not 0');
    }
    const winner = won[0].index;
    const rows = await streamRows(streamId);
    expect(rows.map((r) => [Number(r.stream_version), (r.data as { racer: number }).racer])).toEqual([
      [1, winner],
      [2, winner],
    ]);
    expect(await store.streamVersion(streamId)).toBe(2);
  });

  it('20 appenders on one existing stream, all expecting its version: one wins, 19 conflict', async () => {
    const store = new EventStore(wide, [], systemClock);
    const streamId = 'race-existing';
    await store.append([streamAppend(streamId, 0, marked(3, { racer: 'setup' }))], meta());

    const { won, lost } = await settle(
      Array.from({ length: 20 }, (_, racer) =>
        store.append([streamAppend(streamId, 3, marked(1 + (racer % 3), { racer }))], meta()),
      ),
    );

    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    const winner = won[0].index;
    const winnerCount = 1 + (winner % 3);
    for (const { reason } of lost) {
      expect(reason).toBeInstanceOf(StreamVersionConflict);
      expect(reason).toMatchObject({ streamId, expectedVersion: 3, actualVersion: 3 + winnerCount });
    }
    const rows = await streamRows(streamId);
    expect(rows.map((r) => Number(r.stream_version))).toEqual(
      Array.from({ length: 3 + winnerCount }, (_, i) => i + 1),
    );
    expect(rows.slice(3).every((r) => (r.data as { racer: number }).racer === winner)).toBe(true);
  });

  it('repeated rounds of 20 racers: one winner a round, and the stream holds exactly the winners events', async () => {
    const store = new EventStore(wide, [], systemClock);
    const streamId = 'race-rounds';
    const rounds = 5;
    const racers = 20;
    const winners: { round: number; racer: number; count: number }[] = [];

    for (let round = 0; round < rounds; round++) {
      // Everyone reads the version before anyone appends, so all 20 race on the same expectation.
      const allRead = barrier(racers, `round ${round} reads`);
      const { won, lost } = await settle(
        Array.from({ length: racers }, async (_, racer) => {
          const expected = await store.streamVersion(streamId);
          await allRead();
          const count = 1 + ((racer + round) % 3);
          await store.append([streamAppend(streamId, expected, marked(count, { round, racer }))], meta());
          return { expected, count };
        }),
      );
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(racers - 1);
      const { expected, count } = won[0].value;
      for (const { reason } of lost) {
        expect(reason).toBeInstanceOf(StreamVersionConflict);
        expect(reason).toMatchObject({ expectedVersion: expected, actualVersion: expected + count });
      }
      winners.push({ round, racer: won[0].index, count });
    }

    const total = winners.reduce((sum, w) => sum + w.count, 0);
    const rows = await streamRows(streamId);
    expect(rows).toHaveLength(total);
    expect(rows.map((r) => Number(r.stream_version))).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const expectedMarkers = winners.flatMap((w) => Array.from({ length: w.count }, () => [w.round, w.racer]));
    expect(
      rows.map((r) => [(r.data as { round: number }).round, (r.data as { racer: number }).racer]),
    ).toEqual(expectedMarkers);
    expect(await store.streamVersion(streamId)).toBe(total);
  });
});

describe('appending to several streams', () => {
  it('is atomic: one wrong expected version appends nothing to any stream and leaves streams as they were', async () => {
    const store = new EventStore(t.db, [], systemClock);
    await store.append([streamAppend('multi-a', 0, marked(1, { setup: true }))], meta());
    await store.append([streamAppend('multi-z', 0, marked(2, { setup: true }))], meta());
    const streamsBefore = await allStreams();
    const headsBefore = await t.db.selectFrom('chain_heads').selectAll().orderBy('tenant_id').execute();
    const countBefore = (await t.db.selectFrom('events').select('event_id').execute()).length;

    // Streams are claimed in id order: multi-a and multi-m are claimed before multi-z fails.
    const attempt = store.append(
      [
        streamAppend('multi-a', 1, marked(1, { attempt: 1 })),
        streamAppend('multi-m', 0, marked(1, { attempt: 1 }), 'tenant-2'),
        streamAppend('multi-z', 1, marked(1, { attempt: 1 })),
      ],
      meta(),
    );
    await expect(attempt).rejects.toBeInstanceOf(StreamVersionConflict);
    await expect(attempt).rejects.toMatchObject({
      streamId: 'multi-z',
      expectedVersion: 1,
      actualVersion: 2,
    });

    expect(await allStreams()).toEqual(streamsBefore);
    expect(await t.db.selectFrom('chain_heads').selectAll().orderBy('tenant_id').execute()).toEqual(
      headsBefore,
    );
    expect((await t.db.selectFrom('events').select('event_id').execute()).length).toBe(countBefore);
    expect(await store.readStream('multi-m')).toEqual([]);
    expect(await store.streamVersion('multi-m')).toBe(0);

    // The same change with the right versions lands on every stream, in one transaction.
    const recorded = await store.append(
      [
        streamAppend('multi-a', 1, marked(1, { attempt: 2 })),
        streamAppend('multi-m', 0, marked(1, { attempt: 2 }), 'tenant-2'),
        streamAppend('multi-z', 2, marked(2, { attempt: 2 })),
      ],
      meta(),
    );
    expect(recorded.map((e) => [e.streamId, e.streamVersion]).sort()).toEqual(
      [
        ['multi-a', 2],
        ['multi-m', 1],
        ['multi-z', 3],
        ['multi-z', 4],
      ].sort(),
    );
    expect(new Set(recorded.map((e) => e.transactionId)).size).toBe(1);
    expect(await store.streamVersion('multi-a')).toBe(2);
    expect(await store.streamVersion('multi-m')).toBe(1);
    expect(await store.streamVersion('multi-z')).toBe(4);
  });

  it("appends with expected version 'any' to new and existing streams, alongside checked ones", async () => {
    const store = new EventStore(t.db, [], systemClock);
    const first = await store.append([streamAppend('any-1', 'any', marked(2, { n: 1 }))], meta());
    expect(first.map((e) => e.streamVersion)).toEqual([1, 2]);

    const second = await store.append(
      [streamAppend('any-1', 'any', marked(1, { n: 2 })), streamAppend('any-2', 0, marked(1, { n: 2 }))],
      meta(),
    );
    expect(second.map((e) => [e.streamId, e.streamVersion])).toEqual([
      ['any-1', 3],
      ['any-2', 1],
    ]);
    expect((await store.readStream('any-1')).map((e) => e.streamVersion)).toEqual([1, 2, 3]);
    expect(await store.streamVersion('any-1')).toBe(3);

    // 'any' does not make a checked stream in the same change any less checked.
    await expect(
      store.append(
        [streamAppend('any-1', 'any', marked(1, { n: 3 })), streamAppend('any-2', 0, marked(1, { n: 3 }))],
        meta(),
      ),
    ).rejects.toMatchObject({ streamId: 'any-2', expectedVersion: 0, actualVersion: 1 });
    expect(await store.streamVersion('any-1')).toBe(3);
  });

  it('appends nothing and opens no stream when given no events', async () => {
    const store = new EventStore(t.db, [], systemClock);
    expect(await store.append([streamAppend('empty-1', 0, [])], meta())).toEqual([]);
    expect(await store.streamVersion('empty-1')).toBe(0);
  });

  it('stores the metadata with every event and readStream returns it, with the event fields', async () => {
    const clock = new ManualClock('2026-03-04T05:06:07.089Z');
    const store = new EventStore(t.db, [], clock);
    const metadata: EventMetadata = {
      actor: { type: 'service-account', id: 'sa_ABCDEFGHIJKLMNOPQRST', name: 'ci-deployer' },
      reason: 'quarterly rotation',
      correlationId: 'corr-123',
      causationId: 'cause-456',
      requestId: 'req-789',
      sourceIp: '203.0.113.7',
    };
    const recorded = await store.append(
      [
        streamAppend('meta-1', 0, [
          { type: 'KeyIssued', data: { keyId: 'key_1', prefix: 'kw_live_ab' } },
          { type: 'ScopesGranted', data: { scopes: ['read'] }, schemaVersion: 2 },
        ]),
      ],
      metadata,
    );

    const read = await store.readStream('meta-1');
    expect(read).toEqual(recorded);
    expect(read.map((e) => e.metadata)).toEqual([metadata, metadata]);
    expect(read.map((e) => [e.type, e.schemaVersion, e.data])).toEqual([
      ['KeyIssued', 1, { keyId: 'key_1', prefix: 'kw_live_ab' }],
      ['ScopesGranted', 2, { scopes: ['read'] }],
    ]);
    expect(read.every((e) => e.occurredAt.toISOString() === '2026-03-04T05:06:07.089Z')).toBe(true);
    expect(read.every((e) => e.tenantId === 'tenant-1' && e.streamType === 'ServiceAccount')).toBe(true);

    const raw = await sql<{ actor: string; reason: string; correlation: string; ip: string }>`
      select metadata->'actor'->>'name' as actor, metadata->>'reason' as reason,
             metadata->>'correlationId' as correlation, metadata->>'sourceIp' as ip
      from events where stream_id = 'meta-1'`.execute(t.db);
    expect(raw.rows).toEqual(
      Array(2).fill({
        actor: 'ci-deployer',
        reason: 'quarterly rotation',
        correlation: 'corr-123',
        ip: '203.0.113.7',
      }),
    );
  });

  it('reads a stream as of a time', async () => {
    const clock = new ManualClock('2026-05-01T00:00:00.000Z');
    const store = new EventStore(t.db, [], clock);
    await store.append([streamAppend('asof-1', 0, marked(1, { at: 1 }))], meta());
    clock.advance(60_000);
    await store.append([streamAppend('asof-1', 1, marked(1, { at: 2 }))], meta());
    clock.advance(60_000);
    await store.append([streamAppend('asof-1', 2, marked(1, { at: 3 }))], meta());

    const until = new Date('2026-05-01T00:01:00.000Z');
    expect((await store.readStream('asof-1', { until })).map((e) => e.streamVersion)).toEqual([1, 2]);
    expect((await store.readStream('asof-1')).map((e) => e.streamVersion)).toEqual([1, 2, 3]);
  });
});

describe('inline projections', () => {
  /** A tiny tenants read model: the projection under test. */
  function tenantsProjection(seenTransactions: string[]): InlineProjection {
    return {
      name: 'tenants-test',
      tables: ['tenants'],
      async apply(trx, events: readonly PendingEvent[]) {
        const { rows } = await sql<{ xid: string }>`select pg_current_xact_id()::text as xid`.execute(trx);
        seenTransactions.push(rows[0].xid);
        for (const event of events) {
          const data = event.data as { name: string };
          if (data.name === 'boom') throw new Error('projection refused');
          if (event.type === 'TenantCreated') {
            await trx
              .insertInto('tenants')
              .values({
                id: event.streamId,
                name: data.name,
                created_at: event.occurredAt,
                version: event.streamVersion,
              })
              .execute();
          } else if (event.type === 'TenantRenamed') {
            await trx
              .updateTable('tenants')
              .set({ name: data.name, version: event.streamVersion })
              .where('id', '=', event.streamId)
              .execute();
          }
        }
      },
    };
  }
  const tenantRow = (id: string) =>
    t.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
  const tenantStream = (id: string, expected: ExpectedVersion, type: string, name: string) =>
    ({
      tenantId: id,
      streamId: id,
      streamType: 'Tenant',
      expectedVersion: expected,
      events: [{ type, data: { name } }],
    }) as StreamAppend;

  it('runs in the append transaction: its rows and the events commit together', async () => {
    const seen: string[] = [];
    const store = new EventStore(
      t.db,
      [tenantsProjection(seen)],
      new ManualClock('2026-02-02T02:02:02.000Z'),
    );
    const [created] = await store.append([tenantStream('tnt-proj-1', 0, 'TenantCreated', 'Acme')], meta());
    expect(seen).toEqual([created.transactionId.toString()]);
    expect(await tenantRow('tnt-proj-1')).toEqual({
      id: 'tnt-proj-1',
      name: 'Acme',
      created_at: new Date('2026-02-02T02:02:02.000Z'),
      version: 1,
    });

    const [renamed] = await store.append(
      [tenantStream('tnt-proj-1', 1, 'TenantRenamed', 'Acme Ltd')],
      meta(),
    );
    expect(seen[1]).toBe(renamed.transactionId.toString());
    expect(await tenantRow('tnt-proj-1')).toMatchObject({ name: 'Acme Ltd', version: 2 });
  });

  it('when it throws, nothing is appended and the read model is unchanged', async () => {
    const store = new EventStore(t.db, [tenantsProjection([])], systemClock);
    await store.append([tenantStream('tnt-proj-2', 0, 'TenantCreated', 'Globex')], meta());
    const before = await tenantRow('tnt-proj-2');
    const headsBefore = await t.db.selectFrom('chain_heads').selectAll().orderBy('tenant_id').execute();

    await expect(
      store.append([tenantStream('tnt-proj-2', 1, 'TenantRenamed', 'boom')], meta()),
    ).rejects.toThrow('projection refused');
    expect((await store.readStream('tnt-proj-2')).map((e) => e.type)).toEqual(['TenantCreated']);
    expect(await store.streamVersion('tnt-proj-2')).toBe(1);
    expect(await tenantRow('tnt-proj-2')).toEqual(before);
    expect(await t.db.selectFrom('chain_heads').selectAll().orderBy('tenant_id').execute()).toEqual(
      headsBefore,
    );
  });

  it("a later projection's failure rolls back an earlier projection's writes", async () => {
    const refuse: InlineProjection = {
      name: 'refuse',
      tables: [],
      apply: async () => {
        throw new Error('second projection refused');
      },
    };
    const store = new EventStore(t.db, [tenantsProjection([]), refuse], systemClock);
    await expect(
      store.append([tenantStream('tnt-proj-3', 0, 'TenantCreated', 'Initech')], meta()),
    ).rejects.toThrow('second projection refused');
    expect(await tenantRow('tnt-proj-3')).toBeUndefined();
    expect(await store.readStream('tnt-proj-3')).toEqual([]);
    expect(await store.streamVersion('tnt-proj-3')).toBe(0);
  });
});

describe('hash chain in the database', () => {
  async function chainOf(tenantId: string) {
    const rows = await t.db
      .selectFrom('events')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('chain_seq')
      .execute();
    const head = await t.db
      .selectFrom('chain_heads')
      .select(['seq', 'hash'])
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    const events = rows.map(toRecordedEvent);
    const links = events.map((event) => ({
      event,
      chainSeq: event.chainSeq,
      prevHash: event.prevHash,
      hash: event.hash,
      position: event.position,
    }));
    return { events, links, head: head ? { seq: BigInt(head.seq), hash: head.hash } : null };
  }

  it('links each tenant in its own chain from seq 1, and the stored chains verify', async () => {
    const clock = new ManualClock('2026-06-01T10:00:00.000Z');
    const store = new EventStore(t.db, [], clock);
    const [alpha, beta] = ['chain-alpha', 'chain-beta'];
    const recorded: RecordedEvent[] = [];
    // Keys out of order, nesting, nulls, unicode and numbers: what jsonb reorders or rewrites.
    const data = (n: number) => ({ z: n, a: { y: [3, 1, 2], b: null }, text: 'héllo ✓', ratio: 0.1 * n });
    for (let i = 0; i < 4; i++) {
      clock.advance(1_000);
      recorded.push(
        ...(await store.append(
          [
            {
              tenantId: alpha,
              streamId: `${alpha}-s${i % 2}`,
              streamType: 'X',
              expectedVersion: 'any',
              events: [{ type: 'A', data: data(i) }],
            },
          ],
          meta({ reason: i % 2 ? 'why' : null, causationId: undefined }),
        )),
      );
      recorded.push(
        ...(await store.append(
          [
            {
              tenantId: beta,
              streamId: `${beta}-s0`,
              streamType: 'X',
              expectedVersion: 'any',
              events: [{ type: 'B', data: data(i) }],
            },
          ],
          meta({ requestId: `req-${i}` }),
        )),
      );
    }
    // One change spanning both tenants extends both chains.
    recorded.push(
      ...(await store.append(
        [
          {
            tenantId: beta,
            streamId: `${beta}-s1`,
            streamType: 'X',
            expectedVersion: 0,
            events: marked(2, { both: true }),
          },
          {
            tenantId: alpha,
            streamId: `${alpha}-s2`,
            streamType: 'X',
            expectedVersion: 0,
            events: marked(1, { both: true }),
          },
        ],
        meta(),
      )),
    );

    for (const [tenantId, length] of [
      [alpha, 5],
      [beta, 6],
    ] as const) {
      const { events, links, head } = await chainOf(tenantId);
      expect(events.map((e) => e.chainSeq)).toEqual(Array.from({ length }, (_, i) => BigInt(i + 1)));
      expect(events[0].prevHash).toBe(GENESIS_HASH);
      expect(head).toEqual({ seq: BigInt(length), hash: events[length - 1].hash });
      expect(checkChain(links, head)).toEqual({ ok: true, checked: length, brokenAt: null });
      // What the append returned is what was stored.
      const returned = recorded
        .filter((e) => e.tenantId === tenantId)
        .sort((a, b) => Number(a.chainSeq - b.chainSeq));
      expect(events).toEqual(returned);
    }
  });

  it('detects an event edited in the database (with the append-only trigger disabled by a superuser)', async () => {
    const store = new EventStore(t.db, [], systemClock);
    for (let i = 0; i < 4; i++) {
      await store.append([streamAppend('tamper-1', i, marked(1, { amount: i }), 'chain-tamper')], meta());
    }
    await store.append([streamAppend('tamper-2', 0, marked(1, { amount: 9 }), 'chain-untouched')], meta());
    const victim = (await chainOf('chain-tamper')).events[2];

    await sql`alter table events disable trigger events_append_only`.execute(t.db);
    try {
      await sql`update events set data = jsonb_set(data, '{amount}', '1000') where event_id = ${victim.eventId}`.execute(
        t.db,
      );
    } finally {
      await sql`alter table events enable trigger events_append_only`.execute(t.db);
    }

    const tampered = await chainOf('chain-tamper');
    expect(checkChain(tampered.links, tampered.head)).toEqual({
      ok: false,
      checked: 3,
      brokenAt: victim.position,
    });
    const untouched = await chainOf('chain-untouched');
    expect(checkChain(untouched.links, untouched.head)).toMatchObject({ ok: true, checked: 1 });
  });
});

describe('chain heads', () => {
  /** Polls until some session is blocked by `pid` (a lock wait PostgreSQL itself reports). */
  async function waitUntilBlockedBy(pid: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from pg_stat_activity where ${pid}::int = any(pg_blocking_pids(pid))`.execute(
        t.db,
      );
      if (rows[0].n > 0) return;
      if (Date.now() > deadline) throw new Error(`no session became blocked by ${pid}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** The promise's value, or a rejection if it has not settled within `ms` (a bound, not a wait). */
  async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([promise, bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  it("an append for one tenant does not wait on another tenant's locked chain head", async () => {
    const store = new EventStore(t.db, [], systemClock);
    await store.append([streamAppend('head-a', 0, marked(1, { n: 1 }), 'head-tenant-a')], meta());
    await store.append([streamAppend('head-b', 0, marked(1, { n: 1 }), 'head-tenant-b')], meta());

    const holder = new Client({ connectionString: t.url });
    await holder.connect();
    let tenantAAppend: Promise<RecordedEvent[]> | undefined;
    try {
      await holder.query('begin');
      await holder.query('select seq from chain_heads where tenant_id = $1 for update', ['head-tenant-a']);
      const { rows } = await holder.query<{ pid: number }>('select pg_backend_pid() as pid');

      let tenantADone = false;
      tenantAAppend = store.append([streamAppend('head-a', 1, marked(1, { n: 2 }), 'head-tenant-a')], meta());
      tenantAAppend.then(
        () => (tenantADone = true),
        () => undefined,
      );
      await waitUntilBlockedBy(rows[0].pid);

      // While tenant A's head is locked and A's append waits on it, B (existing and new) append.
      const b = await within(
        store.append([streamAppend('head-b', 1, marked(1, { n: 2 }), 'head-tenant-b')], meta()),
        5_000,
        'append for tenant B',
      );
      expect(b.map((e) => e.chainSeq)).toEqual([2n]);
      const c = await within(
        store.append([streamAppend('head-c', 0, marked(1, { n: 1 }), 'head-tenant-c')], meta()),
        5_000,
        'append for new tenant C',
      );
      expect(c.map((e) => e.chainSeq)).toEqual([1n]);
      expect(tenantADone).toBe(false);

      await holder.query('commit');
      const a = await within(tenantAAppend, 5_000, 'append for tenant A after release');
      expect(tenantADone).toBe(true);
      expect(a.map((e) => [e.streamVersion, e.chainSeq])).toEqual([[2, 2n]]);
    } finally {
      await holder.end();
      await tenantAAppend?.catch(() => undefined);
    }
  });
});

describe('an append to many existing streams (the set-based claim)', () => {
  const store = () => new EventStore(t.db, [], systemClock);

  async function seed(prefix: string, n: number): Promise<string[]> {
    const ids = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
    for (const id of ids) await store().append([streamAppend(id, 0, marked(1, { seed: true }))], meta());
    return ids;
  }

  it('claims every stream at its expected version in one go and numbers each event after it', async () => {
    const ids = await seed('batch-ok', 50);
    const recorded = await store().append(
      ids.map((id) => streamAppend(id, 1, marked(2, { swept: true }))),
      meta(),
    );
    expect(recorded).toHaveLength(100);
    expect(recorded.filter((e) => e.streamId === ids[7]).map((e) => e.streamVersion)).toEqual([2, 3]);
    const versions = await t.db
      .selectFrom('streams')
      .select(['stream_id', 'version'])
      .where('stream_id', 'in', ids)
      .execute();
    expect(versions.every((v) => Number(v.version) === 3)).toBe(true);
  });

  it('appends nothing when one stream moved on, and names it', async () => {
    const ids = await seed('batch-stale', 10);
    await store().append([streamAppend(ids[4], 1, marked(1, { moved: true }))], meta());
    const before = await t.db
      .selectFrom('events')
      .select(sql<string>`count(*)`.as('n'))
      .executeTakeFirstOrThrow();
    const attempt = store().append(
      ids.map((id) => streamAppend(id, 1, marked(1, { swept: true }))),
      meta(),
    );
    await expect(attempt).rejects.toBeInstanceOf(StreamVersionConflict);
    await expect(attempt).rejects.toMatchObject({ streamId: ids[4] });
    const after = await t.db
      .selectFrom('events')
      .select(sql<string>`count(*)`.as('n'))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it('two sweeps over overlapping streams never deadlock: one wins, the other conflicts', async () => {
    const ids = await seed('batch-race', 40);
    const forward = ids.map((id) => streamAppend(id, 1, marked(1, { by: 'a' })));
    const backward = [...ids].reverse().map((id) => streamAppend(id, 1, marked(1, { by: 'b' })));
    const results = await Promise.allSettled([
      store().append(forward, meta()),
      store().append(backward, meta()),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(failed.reason).toBeInstanceOf(StreamVersionConflict);
  });
});

describe('an append that opens many new streams (the set-based claim)', () => {
  const store = () => new EventStore(t.db, [], systemClock);
  const ids = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);

  it('opens every stream in one insert, each at version 1', async () => {
    const fresh = ids('new-ok', 30);
    const recorded = await store().append(
      fresh.map((id) => streamAppend(id, 0, marked(1, { raised: true }))),
      meta(),
    );
    expect(recorded.map((e) => e.streamVersion)).toEqual(fresh.map(() => 1));
    const rows = await t.db.selectFrom('streams').select('version').where('stream_id', 'in', fresh).execute();
    expect(rows.map((r) => Number(r.version))).toEqual(fresh.map(() => 1));
  });

  it('appends nothing when one of them exists already, and names it', async () => {
    const fresh = ids('new-taken', 10);
    await store().append([streamAppend(fresh[6], 0, marked(1, { first: true }))], meta());
    const count = async () =>
      (
        await t.db
          .selectFrom('events')
          .select(sql<string>`count(*)`.as('n'))
          .executeTakeFirstOrThrow()
      ).n;
    const before = await count();
    const attempt = store().append(
      fresh.map((id) => streamAppend(id, 0, marked(1, { raised: true }))),
      meta(),
    );
    await expect(attempt).rejects.toBeInstanceOf(StreamVersionConflict);
    await expect(attempt).rejects.toMatchObject({ streamId: fresh[6], actualVersion: 1 });
    expect(await count()).toBe(before);
    const opened = await t.db
      .selectFrom('streams')
      .select('stream_id')
      .where('stream_id', 'in', fresh)
      .execute();
    expect(opened.map((r) => r.stream_id)).toEqual([fresh[6]]);
  });

  it('two appends opening overlapping streams at once: one wins, the other conflicts', async () => {
    const fresh = ids('new-race', 40);
    const results = await Promise.allSettled([
      store().append(
        fresh.map((id) => streamAppend(id, 0, marked(1, { by: 'a' }))),
        meta(),
      ),
      store().append(
        [...fresh].reverse().map((id) => streamAppend(id, 0, marked(1, { by: 'b' }))),
        meta(),
      ),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(
      StreamVersionConflict,
    );
  });
});
