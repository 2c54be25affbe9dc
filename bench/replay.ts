import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { decideUpdate, evolve, SERVICE_ACCOUNT_STREAM, type ServiceAccount } from '@keyward/accounts';
import { ManualClock, newId, ID_PREFIX } from '@keyward/core';
import type { Db } from '@keyward/db';
import { EventStore, type NewEvent } from '@keyward/event-store';
import { findProjection, inlineProjections, rebuildProjection } from '@keyward/projections';
import { ReplayReader } from '@keyward/replay';
import {
  BENCH_METADATA,
  benchAccountCreated,
  benchDatabase,
  seedTenant,
  timed,
  round,
  elapsed,
} from './support';

/**
 * `npm run bench -- replay`: the incident-response reads, against a plain read of the same rows.
 *
 * - baseline: every event row read in commit order in batches of 1,000 (the rebuild's own query
 *   and batch size), doing nothing with them;
 * - rebuild: the service-accounts projection rebuilt from position 0 (build beside, then swap)
 *   over those events;
 * - state as of: one account with 10,000 events, rebuilt at a time near its end.
 *
 * Targets (issue 4): as-of under 100 ms; rebuild at 25% or more of the raw read rate.
 */

const DATABASE = 'keyward_bench_replay';
const TENANT = 'bench';
const TOTAL_EVENTS = 200_000;
const BIG_ACCOUNT_EVENTS = 10_000;
const EVENTS_PER_ACCOUNT = 1_000;
const APPEND_BATCH = 1_000;
const AS_OF_RUNS = 30;

interface Figure {
  run: string;
  events: number;
  ms: number;
  eventsPerSecond: number;
  vsBaseline: number | null;
  p50Ms?: number;
  p95Ms?: number;
}

export async function replayBench(): Promise<number> {
  const startedAt = Date.now();
  const loadBefore = os.loadavg();
  console.log(
    `replay benchmark: database ${DATABASE}; ${TOTAL_EVENTS} events, one account of ${BIG_ACCOUNT_EVENTS}`,
  );
  const db = await benchDatabase(DATABASE);

  // --- Fixture: accounts of EVENTS_PER_ACCOUNT events each (one of BIG_ACCOUNT_EVENTS), every
  // event made by the aggregate's own decide functions and appended through the event store.
  const clock = new ManualClock('2026-01-01T00:00:00Z');
  const store = new EventStore(db, inlineProjections, clock);
  await seedTenant(store, TENANT);
  const bigAccount = await seedAccount(store, clock, 'big-account', BIG_ACCOUNT_EVENTS);
  let seeded = BIG_ACCOUNT_EVENTS;
  for (let i = 0; seeded < TOTAL_EVENTS; i++) {
    await seedAccount(store, clock, `account-${i}`, Math.min(EVENTS_PER_ACCOUNT, TOTAL_EVENTS - seeded));
    seeded += EVENTS_PER_ACCOUNT;
  }
  const total = await countEvents(db);
  await sql`vacuum analyze`.execute(db);
  console.log(`fixture: ${total} events (${elapsed(startedAt)})`);

  // --- Baseline: the raw read.
  const figures: Figure[] = [];
  const baseline = await timed(() => readAll(db));
  figures.push(figure('plain read of every event (baseline)', baseline.result, baseline.ms, null));
  const rate = baseline.result / (baseline.ms / 1000);
  console.log(`  baseline: ${figures[0].eventsPerSecond} events/s`);

  // --- Rebuild.
  const rebuild = await timed(() => rebuildProjection(db, findProjection('service-accounts')));
  figures.push(figure('rebuild service-accounts from 0', rebuild.result.events, rebuild.ms, rate));
  console.log(`  rebuild: ${figures[1].eventsPerSecond} events/s`);

  // --- State as of, for the big account, near the end of its history.
  const reader = new ReplayReader(db);
  const asOf = new Date(clock.now().getTime() - 1_000);
  const times: number[] = [];
  let folded = 0;
  for (let i = 0; i < AS_OF_RUNS + 3; i++) {
    const run = await timed(() => reader.accountAsOf(TENANT, bigAccount, asOf));
    if (!run.result) throw new Error('the big account was not found as of the end of its history');
    folded = run.result.account.version;
    if (i >= 3) times.push(run.ms); // the first runs warm the JIT and the buffer cache
  }
  times.sort((a, b) => a - b);
  const p50 = times[Math.floor(times.length * 0.5)];
  const p95 = times[Math.min(times.length - 1, Math.floor(times.length * 0.95))];
  figures.push({
    ...figure(`state as of, account of ${folded} events (p50 of ${AS_OF_RUNS})`, folded, p50, rate),
    p50Ms: round(p50, 1),
    p95Ms: round(p95, 1),
  });
  console.log(`  state as of: p50 ${round(p50, 1)} ms, p95 ${round(p95, 1)} ms`);

  const loadAfter = os.loadavg();
  console.log('');
  console.log(report(figures));
  console.log('');
  console.log(
    `targets: state as of under 100 ms: ${p50 < 100 ? 'met' : 'MISSED'} (p50 ${round(p50, 1)} ms, p95 ${round(p95, 1)} ms); ` +
      `rebuild at 25% of the raw read rate or more: ${figures[1].vsBaseline! >= 0.25 ? 'met' : 'MISSED'} (${figures[1].vsBaseline}×)`,
  );
  const file = path.join(__dirname, 'results', 'replay.json');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(
    file,
    `${JSON.stringify(
      {
        benchmark: 'replay',
        at: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, loadBefore, loadAfter },
        events: total,
        figures,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote bench/results/replay.json (${elapsed(startedAt)})`);
  return 0;
}

/** One account: created, then updated until its stream holds `events` events. */
async function seedAccount(
  store: EventStore,
  clock: ManualClock,
  name: string,
  events: number,
): Promise<string> {
  const id = newId(ID_PREFIX.serviceAccount);
  const created = benchAccountCreated(id, TENANT, name, ['tickets:read', 'summaries:draft']);
  let state: ServiceAccount | null = null;
  for (const event of created) state = evolve(state, { ...event, occurredAt: clock.now() });
  let pending: NewEvent[] = [...created];
  let version = 0;
  for (let n = 1; n < events; n++) {
    const next = decideUpdate(state!, { description: `revision ${n}` });
    pending.push(...next);
    for (const event of next) state = evolve(state, { ...event, occurredAt: clock.now() });
    if (pending.length >= APPEND_BATCH) {
      await appendTo(store, id, version, pending);
      version += pending.length;
      pending = [];
      clock.advance(60_000);
    }
  }
  if (pending.length) await appendTo(store, id, version, pending);
  clock.advance(60_000);
  return id;
}

async function appendTo(store: EventStore, id: string, version: number, events: NewEvent[]): Promise<void> {
  await store.append(
    [
      {
        tenantId: TENANT,
        streamId: id,
        streamType: SERVICE_ACCOUNT_STREAM,
        expectedVersion: version,
        events,
      },
    ],
    BENCH_METADATA,
  );
}

async function countEvents(db: Db): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select(sql<string>`count(*)`.as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Every event row in commit order, 1,000 at a time, with the rebuild's keyset query. */
async function readAll(db: Db): Promise<number> {
  let after = { transactionId: '0', position: '0' };
  let count = 0;
  for (;;) {
    const rows = await db
      .selectFrom('events')
      .selectAll()
      .where(
        sql<boolean>`(transaction_id, position) > (${after.transactionId}::xid8, ${after.position}::bigint)`,
      )
      .orderBy('transaction_id')
      .orderBy('position')
      .limit(1_000)
      .execute();
    if (rows.length === 0) return count;
    count += rows.length;
    const last = rows[rows.length - 1];
    after = { transactionId: last.transaction_id, position: last.position };
  }
}

function figure(run: string, events: number, ms: number, baselineRate: number | null): Figure {
  const eventsPerSecond = Math.round(events / (ms / 1000));
  return {
    run,
    events,
    ms: round(ms, 1),
    eventsPerSecond,
    vsBaseline: baselineRate === null ? null : round(eventsPerSecond / baselineRate, 2),
  };
}

function report(figures: Figure[]): string {
  const rows = figures.map((f) => [
    f.run,
    String(f.events),
    String(f.ms),
    String(f.eventsPerSecond),
    f.vsBaseline === null ? '1.00x (baseline)' : `${f.vsBaseline.toFixed(2)}x`,
  ]);
  const head = ['run', 'events', 'ms', 'events/s', 'vs plain read'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
