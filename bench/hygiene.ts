import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { ManualClock } from '@keyward/core';
import { EventStore } from '@keyward/event-store';
import { sweepHygiene } from '@keyward/hygiene';
import { POLICY_STREAM, policyStreamId } from '@keyward/keys';
import { inlineProjections } from '@keyward/projections';
import { BENCH_METADATA, benchDatabase, elapsed, round, timed } from './support';
import { TENANT, seedKeys } from './sweep';

/**
 * `npm run bench -- hygiene`: the hygiene sweep over 100,000 live keys nobody used. The first run
 * raises an UNUSED_KEY on every one (a new signal stream each); the second is what every later
 * minute costs while nothing changes: it finds each episode reported and writes nothing. The
 * baseline is the expiry bench's: a set-based sweep appending one event per key.
 */
const DATABASE = 'keyward_bench_hygiene';
const KEYS = Number(process.env.BENCH_HYGIENE_KEYS ?? 100_000);
const DAY = 24 * 3600 * 1000;

export async function hygieneBench(): Promise<number> {
  const startedAt = Date.now();
  const loadBefore = os.loadavg();
  console.log(`hygiene benchmark: database ${DATABASE}; ${KEYS} live keys, none ever used`);
  const db = await benchDatabase(DATABASE);
  const clock = new ManualClock('2026-01-01T00:00:00Z');
  const store = new EventStore(db, inlineProjections, clock);
  await seedKeys(store, clock, KEYS, 30);
  // The tenant calls a key unused after a day.
  await store.append(
    [
      {
        tenantId: TENANT,
        streamId: policyStreamId(TENANT),
        streamType: POLICY_STREAM,
        expectedVersion: 0,
        events: [{ type: 'TenantPolicyChanged', data: { changes: { unusedAfterDays: 1 } } }],
      },
    ],
    BENCH_METADATA,
  );
  await sql`vacuum analyze`.execute(db);
  console.log(`fixture: ${KEYS} keys (${elapsed(startedAt)})`);
  clock.advance(DAY);

  const noRotations = { schedule: async () => undefined };
  const first = await timed(() => sweepHygiene(db, store, noRotations, clock.now()));
  if (first.result.raised.UNUSED_KEY !== KEYS)
    throw new Error(`the first run raised ${first.result.raised.UNUSED_KEY} of ${KEYS} UNUSED_KEY`);
  clock.advance(60_000);
  const steady = await timed(() => sweepHygiene(db, store, noRotations, clock.now()));
  if (Object.keys(steady.result.raised).length > 0) throw new Error('the second run raised signals');

  const figures = [
    { run: 'first run: UNUSED_KEY on every key', keys: KEYS, ms: round(first.ms, 1) },
    { run: 'next minute: nothing new', keys: KEYS, ms: round(steady.ms, 1) },
  ].map((f) => ({ ...f, keysPerSecond: Math.round(f.keys / (f.ms / 1000)) }));
  console.log('');
  for (const f of figures)
    console.log(
      `${f.run.padEnd(36)} ${String(f.keys).padStart(7)} keys  ${String(f.ms).padStart(9)} ms  ${String(f.keysPerSecond).padStart(7)} keys/s`,
    );
  const file = path.join(__dirname, 'results', 'hygiene.json');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(
    file,
    `${JSON.stringify(
      {
        benchmark: 'hygiene',
        at: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, loadBefore, loadAfter: os.loadavg() },
        figures,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote bench/results/hygiene.json (${elapsed(startedAt)})`);
  return 0;
}
