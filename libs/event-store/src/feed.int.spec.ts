import { Client } from 'pg';
import { sql } from 'kysely';
import { systemClock } from '@keyward/core';
import { createDb, type Db } from '@keyward/db';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import {
  EventStore,
  FEED_START,
  checkpointOf,
  type EventMetadata,
  type FeedCheckpoint,
  type InlineProjection,
  type NewEvent,
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

const meta: EventMetadata = {
  actor: { type: 'system', id: 'feed-test', name: 'feed test' },
  reason: null,
  correlationId: 'c',
};

function one(
  streamId: string,
  expectedVersion: number | 'any',
  data: unknown,
  tenantId = 'tenant-1',
): StreamAppend {
  const events: NewEvent[] = [{ type: 'Happened', data }];
  return { tenantId, streamId, streamType: 'Thing', expectedVersion, events };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A hold that a test opens by hand; `entered` resolves once the append is waiting on it. */
function hold() {
  let release!: () => void;
  let signalEntered!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const entered = new Promise<void>((resolve) => (signalEntered = resolve));
  return { release, released, entered, signalEntered };
}

/**
 * A follower of the global feed, as projections and exports follow it: reads pages after its
 * checkpoint and moves the checkpoint to the last event it got.
 */
class Follower {
  readonly seen: RecordedEvent[] = [];
  checkpoint: FeedCheckpoint = FEED_START;
  constructor(
    private readonly store: EventStore,
    private readonly options: { limit: number; tenantId?: string },
  ) {}

  async poll(): Promise<number> {
    const page = await this.store.readFeed(this.checkpoint, this.options);
    if (page.length > 0) {
      this.seen.push(...page);
      this.checkpoint = checkpointOf(page[page.length - 1]);
    }
    return page.length;
  }

  /**
   * Reads until `done` holds. Other sessions of the cluster (other test files) can hold back the
   * feed's horizon for a moment, so this polls within a bound instead of expecting one read to do.
   */
  async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`feed never got ${what}; saw ${this.seen.length} events`);
      if ((await this.poll()) === 0) await nextTurn();
    }
  }

  has(eventId: string): boolean {
    return this.seen.some((e) => e.eventId === eventId);
  }
}

function expectFeedOrder(events: readonly RecordedEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1], events[i]];
    const ascending =
      a.transactionId < b.transactionId || (a.transactionId === b.transactionId && a.position < b.position);
    if (!ascending)
      throw new Error(
        `feed out of order at ${i}: (${a.transactionId}, ${a.position}) then (${b.transactionId}, ${b.position})`,
      );
  }
}

async function eventIdsInFeedOrder(): Promise<string[]> {
  const rows = await t.db
    .selectFrom('events')
    .select('event_id')
    .orderBy('transaction_id')
    .orderBy('position')
    .execute();
  return rows.map((r) => r.event_id);
}

it("the app's sessions end an idle transaction, so one stuck session cannot stall the feed for long", async () => {
  const setting = sql<{ timeout: string }>`
    select current_setting('idle_in_transaction_session_timeout') as timeout`;
  const { rows } = await setting.execute(t.db);
  expect(rows[0].timeout).not.toBe('0');
});

it('a reader following the feed during 20 concurrent appenders sees every event exactly once, in order', async () => {
  const wide: Db = createDb(t.url, { max: 25, applicationName: 'keyward-test-feed' });
  // The straggler's append takes its transaction id early, then waits inside its transaction
  // while every appender commits later transactions: the case where positions and transaction ids
  // commit out of order, made certain instead of left to chance.
  const straggle = hold();
  let straggler: Promise<RecordedEvent[]> | undefined;
  try {
    let stragglerXid = 0n;
    const stall: InlineProjection = {
      name: 'straggler',
      tables: [],
      apply: async (trx, events) => {
        if (!events.some((e) => e.streamId === 'straggler')) return;
        const { rows } = await sql<{ xid: string }>`select pg_current_xact_id()::text as xid`.execute(trx);
        stragglerXid = BigInt(rows[0].xid);
        straggle.signalEntered();
        await straggle.released;
      },
    };
    const store = new EventStore(wide, [stall], systemClock);
    const reader = new Follower(new EventStore(wide, [], systemClock), { limit: 7 });

    const appenders = 20;
    const appendsEach = 10;
    let finished = 0;
    const appending = Promise.all(
      Array.from({ length: appenders }, async (_, a) => {
        const versions = [0, 0];
        for (let n = 0; n < appendsEach; n++) {
          if (a === 0 && n === appendsEach / 2) {
            // Once the reader has caught some events mid-run, the straggler opens its transaction.
            while (reader.seen.length === 0) await nextTurn();
            straggler = store.append([one('straggler', 0, { straggler: true }, 'tenant-straggler')], meta);
            await straggle.entered;
          }
          const s = n % 2;
          const appends = [one(`feed-${a}-${s}`, versions[s], { a, n }, `tenant-${(a + s) % 5}`)];
          // Every third append also changes a stream five appenders share, of another tenant, in the
          // same transaction.
          if (n % 3 === 0) {
            const k = a % 4;
            appends.push(one(`feed-shared-${k}`, 'any', { a, n, shared: true }, `tenant-shared-${k}`));
          }
          await store.append(appends, meta);
          versions[s] += 1;
        }
        finished += 1;
      }),
    );

    // The reader follows the feed for as long as the appenders run.
    const reading = (async () => {
      while (finished < appenders) {
        if ((await reader.poll()) === 0) await nextTurn();
      }
    })();
    await Promise.all([appending, reading]);

    // Every appender has committed; the straggler, with an older transaction id, has not. A reader
    // must not have moved past it.
    await reader.poll();
    expect(stragglerXid).toBeGreaterThan(0n);
    expect(reader.seen.every((e) => e.transactionId < stragglerXid)).toBe(true);

    straggle.release();
    const [stragglerEvent] = await straggler!;
    expect(stragglerEvent.transactionId).toBe(stragglerXid);

    const total = appenders * appendsEach + appenders * Math.ceil(appendsEach / 3) + 1;
    await reader.until(() => reader.seen.length >= total, `all ${total} events`);
    // A last read after everything has been seen must bring nothing new.
    expect(await reader.poll()).toBe(0);

    const seenIds = reader.seen.map((e) => e.eventId);
    expect(new Set(seenIds).size).toBe(seenIds.length);
    expect(seenIds).toHaveLength(total);
    expect(reader.has(stragglerEvent.eventId)).toBe(true);
    expectFeedOrder(reader.seen);
    expect(seenIds).toEqual(await eventIdsInFeedOrder());
    const stored = await t.db.selectFrom('events').select('event_id').execute();
    expect(new Set(seenIds)).toEqual(new Set(stored.map((r) => r.event_id)));
  } finally {
    straggle.release();
    await straggler?.catch(() => undefined);
    await wide.destroy();
  }
});

it('does not return an event while an older transaction is open, and returns it once that ends', async () => {
  const store = new EventStore(t.db, [], systemClock);
  const [earlier] = await store.append([one('xmin-1', 0, { n: 1 })], meta);

  const older = new Client({ connectionString: t.url });
  await older.connect();
  try {
    await older.query('begin');
    const { rows } = await older.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
    const olderXid = BigInt(rows[0].xid);

    const [later] = await store.append([one('xmin-1', 1, { n: 2 })], meta);
    expect(later.transactionId).toBeGreaterThan(olderXid);
    expect(earlier.transactionId).toBeLessThan(olderXid);

    // Read twice while the older transaction stays open: the earlier event, never the later one.
    const reader = new Follower(store, { limit: 1000 });
    await reader.until(() => reader.has(earlier.eventId), 'the event committed before the open transaction');
    await reader.poll();
    expect(reader.has(later.eventId)).toBe(false);

    await older.query('rollback');
    await reader.until(() => reader.has(later.eventId), 'the event after the open transaction ended');
    expect(reader.seen.filter((e) => e.eventId === later.eventId)).toHaveLength(1);
    expectFeedOrder(reader.seen);
  } finally {
    await older.end();
  }
});

it('returns an older transaction that commits last before the newer ones it held back, never skipping it', async () => {
  const held = hold();
  const slow: InlineProjection = {
    name: 'slow',
    tables: [],
    apply: async (_trx, events) => {
      if (!events.some((e) => e.streamId === 'slow-1')) return;
      held.signalEntered();
      await held.released;
    },
  };
  const store = new EventStore(t.db, [slow], systemClock);
  const reader = new Follower(store, { limit: 1000 });

  // A takes a transaction id (claiming its stream) and stops before inserting; B commits meanwhile.
  const a = store.append([one('slow-1', 0, { who: 'A' }, 'tenant-a')], meta);
  let b: RecordedEvent;
  try {
    await held.entered;
    [b] = await store.append([one('fast-1', 0, { who: 'B' }, 'tenant-b')], meta);
    await reader.poll();
    expect(reader.has(b.eventId)).toBe(false);
  } finally {
    held.release();
  }
  const [aEvent] = await a;
  // A's position is after B's, yet A's transaction is the older: the feed gives A first.
  expect(aEvent.position).toBeGreaterThan(b.position);
  expect(aEvent.transactionId).toBeLessThan(b.transactionId);
  await reader.until(() => reader.has(b.eventId), 'B');
  const ours = reader.seen.filter((e) => e.eventId === aEvent.eventId || e.eventId === b.eventId);
  expect(ours.map((e) => e.eventId)).toEqual([aEvent.eventId, b.eventId]);
  expectFeedOrder(reader.seen);
});

it('pages through the feed by checkpoint without repeating or losing events, and filters by tenant', async () => {
  const store = new EventStore(t.db, [], systemClock);
  for (let i = 0; i < 7; i++) {
    await store.append([one(`page-${i % 3}`, 'any', { i }, i % 2 ? 'tenant-odd' : 'tenant-even')], meta);
  }
  const stored = await eventIdsInFeedOrder();

  const all = new Follower(store, { limit: 1000 });
  await all.until(() => all.seen.length >= stored.length, 'every event');
  const paged = new Follower(store, { limit: 2 });
  await paged.until(() => paged.seen.length >= stored.length, 'every event, two at a time');
  expect(await paged.poll()).toBe(0);
  expect(all.seen.map((e) => e.eventId)).toEqual(stored);
  expect(paged.seen.map((e) => e.eventId)).toEqual(stored);

  const odd = new Follower(store, { limit: 2, tenantId: 'tenant-odd' });
  await odd.until(() => odd.seen.length >= 3, "tenant-odd's events");
  expect(await odd.poll()).toBe(0);
  expect(odd.seen.map((e) => e.eventId)).toEqual(
    all.seen.filter((e) => e.tenantId === 'tenant-odd').map((e) => e.eventId),
  );
  expect(odd.seen.map((e) => (e.data as { i: number }).i)).toEqual([1, 3, 5]);
});
