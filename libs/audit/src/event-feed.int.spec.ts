import { sql } from 'kysely';
import { ValidationFailed, systemClock } from '@keyward/core';
import { createDb } from '@keyward/db';
import {
  EventStore,
  FEED_START,
  checkpointOf,
  type EventMetadata,
  type FeedCheckpoint,
  type RecordedEvent,
  type StreamAppend,
} from '@keyward/event-store';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import { EventFeed, type FeedFilter } from './event-feed';

let t: TestDatabase;
let store: EventStore;
let feed: EventFeed;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new EventStore(t.db, [], systemClock);
  feed = new EventFeed(t.db);
});
afterAll(async () => {
  await t.drop();
});

const meta = (correlationId = 'c'): EventMetadata => ({
  actor: { type: 'system', id: 'feed-test', name: 'feed test' },
  reason: null,
  correlationId,
});

function one(
  tenantId: string,
  streamId: string,
  expectedVersion: number | 'any',
  type = 'Happened',
): StreamAppend {
  return { tenantId, streamId, streamType: 'thing', expectedVersion, events: [{ type, data: { streamId } }] };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Waits until every committed event of the tenant is below the feed's horizon. Sessions of other
 * test files share the cluster's transaction ids and can hold the horizon back for a moment.
 */
async function caughtUp(tenantId: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await sql<{ behind: boolean }>`
      select exists (select 1 from events where tenant_id = ${tenantId}
        and transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) as behind`.execute(t.db);
    if (!rows[0].behind) return;
    if (Date.now() > deadline) throw new Error(`the feed of ${tenantId} never caught up`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function tenantEventsInCommitOrder(tenantId: string): Promise<string[]> {
  const rows = await t.db
    .selectFrom('events')
    .select('event_id')
    .where('tenant_id', '=', tenantId)
    .orderBy('transaction_id')
    .orderBy('position')
    .execute();
  return rows.map((r) => r.event_id);
}

async function all(
  tenantId: string,
  from: FeedCheckpoint,
  filter: FeedFilter = {},
): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const event of feed.stream(tenantId, from, filter)) out.push(event);
  return out;
}

it('after=<position> continues after that event in commit order, not after that number', async () => {
  const tenant = 'order';
  const [first] = await store.append([one(tenant, 'order-1', 0)], meta());
  // The late append takes its transaction id (claiming its stream) and then waits, while two
  // later transactions commit: it ends with the oldest transaction id and the highest position.
  let entered!: () => void;
  let release!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const late = store.append([one(tenant, 'order-late', 0)], meta(), async () => {
    entered();
    await released;
  });
  await inside;
  const [second] = await store.append([one(tenant, 'order-2', 0)], meta());
  const [third] = await store.append([one(tenant, 'order-3', 0)], meta());
  release();
  const [straggler] = await late;
  await caughtUp(tenant);

  expect(straggler.position).toBeGreaterThan(third.position);
  expect(straggler.transactionId).toBeLessThan(second.transactionId);
  const ids = (events: RecordedEvent[]) => events.map((e) => e.eventId);
  const page = await feed.page(tenant, FEED_START, {}, 50);
  expect(ids(page.items)).toEqual(ids([first, straggler, second, third]));
  expect(page.nextCursor).toBeNull();

  const after = async (position: bigint) =>
    ids((await feed.page(tenant, await feed.start(tenant, { after: position }), {}, 50)).items);
  expect(await after(0n)).toEqual(ids([first, straggler, second, third]));
  expect(await after(straggler.position)).toEqual(ids([second, third]));
  expect(await after(first.position)).toEqual(ids([straggler, second, third]));
  expect(await after(third.position)).toEqual([]);
  expect(await after(second.position)).toEqual(ids([third]));
});

it('refuses an after= that names no event of the tenant', async () => {
  const [own] = await store.append([one('owner', 'owner-1', 0)], meta());
  const [foreign] = await store.append([one('stranger', 'stranger-1', 0)], meta());
  await expect(feed.start('owner', { after: own.position })).resolves.toEqual(checkpointOf(own));
  for (const position of [foreign.position, 999_999_999n]) {
    const refused = feed.start('owner', { after: position });
    await expect(refused).rejects.toBeInstanceOf(ValidationFailed);
    await expect(refused).rejects.toMatchObject({ errors: [{ field: 'after' }] });
  }
});

it('a reader paging the feed during concurrent appenders of three tenants sees its tenant’s events exactly once, in order', async () => {
  const wide = createDb(t.url, { max: 12, applicationName: 'keyward-test-audit-feed' });
  try {
    const busyStore = new EventStore(wide, [], systemClock);
    const reader = new EventFeed(wide);
    const tenants = ['busy', 'busy-neighbour', 'busy-other'];
    const appenders = 9;
    const appendsEach = 12;
    let finished = 0;
    const appending = Promise.all(
      Array.from({ length: appenders }, async (_, a) => {
        for (let n = 0; n < appendsEach; n++) {
          const tenantId = tenants[(a + n) % tenants.length];
          await busyStore.append(
            [
              {
                ...one(tenantId, `busy-${a}-${n}`, 0),
                events: [
                  { type: 'A', data: { a, n } },
                  { type: 'B', data: {} },
                ],
              },
            ],
            meta(),
          );
        }
        finished += 1;
      }),
    );

    // Follows the busy tenant: the cursor while the feed has more, then after=<last position>.
    const seen: RecordedEvent[] = [];
    let from = FEED_START;
    const poll = async () => {
      const page = await reader.page('busy', from, {}, 7);
      seen.push(...page.items);
      const last = page.items[page.items.length - 1];
      if (page.nextCursor) from = await reader.start('busy', { cursor: page.nextCursor, after: 1n });
      else if (last) from = await reader.start('busy', { after: last.position });
      return page.items.length;
    };
    const reading = (async () => {
      while (finished < appenders) if ((await poll()) === 0) await nextTurn();
    })();
    await Promise.all([appending, reading]);
    await caughtUp('busy');
    while ((await poll()) > 0);

    const expected = await tenantEventsInCommitOrder('busy');
    expect(expected).toHaveLength((2 * appenders * appendsEach) / tenants.length);
    expect(seen.map((e) => e.eventId)).toEqual(expected);
    expect(seen.every((e) => e.tenantId === 'busy')).toBe(true);
  } finally {
    await wide.destroy();
  }
});

it('filters by one or several types and by correlation id, alike in pages and in the export', async () => {
  const tenant = 'filtered';
  const appended: RecordedEvent[] = [];
  for (let i = 0; i < 6; i++) {
    const type = ['Issued', 'Revoked', 'Expired'][i % 3];
    appended.push(...(await store.append([one(tenant, `filtered-${i}`, 0, type)], meta(`corr-${i % 2}`))));
  }
  await store.append([one('filtered-neighbour', 'neighbour-1', 0, 'Issued')], meta('corr-0'));
  await caughtUp(tenant);

  const cases: [FeedFilter, RecordedEvent[]][] = [
    [{}, appended],
    [{ types: ['Issued'] }, appended.filter((e) => e.type === 'Issued')],
    [{ types: ['Issued', 'Expired'] }, appended.filter((e) => e.type !== 'Revoked')],
    [{ correlationId: 'corr-1' }, appended.filter((e) => e.metadata.correlationId === 'corr-1')],
    [
      { types: ['Revoked'], correlationId: 'corr-1' },
      appended.filter((e) => e.type === 'Revoked' && e.metadata.correlationId === 'corr-1'),
    ],
    [{ types: ['Nothing'] }, []],
  ];
  for (const [filter, expected] of cases) {
    const ids = expected.map((e) => e.eventId);
    expect((await all(tenant, FEED_START, filter)).map((e) => e.eventId)).toEqual(ids);
    // Two events a page: the pages joined are the export.
    const paged: string[] = [];
    let page = await feed.page(tenant, FEED_START, filter, 2);
    paged.push(...page.items.map((e) => e.eventId));
    while (page.nextCursor) {
      page = await feed.page(tenant, await feed.start(tenant, { cursor: page.nextCursor }), filter, 2);
      paged.push(...page.items.map((e) => e.eventId));
    }
    expect(paged).toEqual(ids);
  }
  // The recorded events come back whole, as the store returned them.
  expect(await all(tenant, FEED_START)).toEqual(appended);
});

it('an export between two batches holds no database connection, so a slow client cannot starve the pool', async () => {
  const tenant = 'slow-client';
  for (let i = 0; i < 3; i++) {
    await store.append(
      [
        {
          ...one(tenant, `slow-${i}`, 0),
          events: Array.from({ length: 400 }, (_, n) => ({ type: 'A', data: { n } })),
        },
      ],
      meta(),
    );
  }
  await caughtUp(tenant);
  // One connection in all: an export reading from an open cursor would keep it.
  const single = createDb(t.url, { max: 1, applicationName: 'keyward-test-audit-single' });
  try {
    const slow = new EventFeed(single);
    const exporting = slow.stream(tenant, FEED_START, {});
    const first = await exporting.next();
    expect(first.done).toBe(false);
    // The export is suspended mid-batch, as when its client stops reading.
    let timer: NodeJS.Timeout | undefined;
    const page = await Promise.race([
      slow.page(tenant, FEED_START, {}, 1),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the export holds the only connection')), 5_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(page.items[0].eventId).toBe((first.value as RecordedEvent).eventId);
    let rest = 0;
    for await (const _event of exporting) rest += 1;
    expect(rest + 1).toBe(1_200);
  } finally {
    await single.destroy();
  }
});
