import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { SERVICE_ACCOUNT_STREAM } from '@keyward/accounts';
import { ManualClock, newId, ID_PREFIX } from '@keyward/core';
import type { Db } from '@keyward/db';
import { EventStore, type StreamAppend } from '@keyward/event-store';
import {
  DEFAULT_POLICY,
  KEY_STREAM,
  decideIssue,
  expiryCandidates,
  issueKeySecret,
  keyFromRow,
  sweepExpiredKeys,
} from '@keyward/keys';
import { inlineProjections } from '@keyward/projections';
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
 * `npm run bench -- sweep`: the expiry sweep over 100,000 keys past their expiry, against a plain
 * read of the same key rows in the sweep's own batches (the baseline). Target (issue 5): under 30 s.
 */

const DATABASE = 'keyward_bench_sweep';
export const TENANT = 'bench';
const KEYS = 100_000;
const BATCH = 1_000;

export async function sweepBench(): Promise<number> {
  const startedAt = Date.now();
  const loadBefore = os.loadavg();
  console.log(`sweep benchmark: database ${DATABASE}; ${KEYS} keys past their expiry`);
  const db = await benchDatabase(DATABASE);
  const clock = new ManualClock('2026-01-01T00:00:00Z');
  const store = new EventStore(db, inlineProjections, clock);

  // --- Fixture: one tenant, one account, KEYS one-day keys issued by the aggregate's decideIssue.
  await seedKeys(store, clock, KEYS, 1);
  await sql`vacuum analyze`.execute(db);
  console.log(`fixture: ${KEYS} keys (${elapsed(startedAt)})`);

  clock.advance(2 * 24 * 3600 * 1000);
  const now = clock.now();

  // --- Baseline: the sweep's own batch query and row decoding, writing nothing.
  const baseline = await timed(() => readCandidates(db, now));
  // --- The sweep.
  const sweep = await timed(() => sweepExpiredKeys(db, store, now));
  if (sweep.result.expired !== KEYS)
    throw new Error(`the sweep expired ${sweep.result.expired} of ${KEYS} keys`);
  const left = await readCandidates(db, now);
  if (left !== 0) throw new Error(`${left} keys were left unswept`);

  const figures = [
    { run: 'read the candidate keys (baseline)', keys: baseline.result, ms: round(baseline.ms, 1) },
    { run: 'expiry sweep (KeyExpired for each)', keys: sweep.result.expired, ms: round(sweep.ms, 1) },
  ].map((f) => ({ ...f, keysPerSecond: Math.round(f.keys / (f.ms / 1000)) }));
  const ratio = round(figures[1].keysPerSecond / figures[0].keysPerSecond, 3);
  console.log('');
  for (const f of figures)
    console.log(
      `${f.run.padEnd(38)} ${String(f.keys).padStart(7)} keys  ${String(f.ms).padStart(9)} ms  ${String(f.keysPerSecond).padStart(7)} keys/s`,
    );
  console.log(
    `sweep vs baseline: ${ratio}x; target under 30 s: ${sweep.ms < 30_000 ? 'met' : 'MISSED'} (${round(sweep.ms / 1000, 1)} s)`,
  );
  const file = path.join(__dirname, 'results', 'sweep.json');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(
    file,
    `${JSON.stringify(
      {
        benchmark: 'sweep',
        at: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, loadBefore, loadAfter: os.loadavg() },
        figures,
        sweepVsBaseline: ratio,
        retries: sweep.result.retries,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote bench/results/sweep.json (${elapsed(startedAt)})`);
  return 0;
}

/**
 * One tenant, one production account, and `count` keys of `days` days issued through the
 * aggregate's decideIssue, a thousand per append. Also the hygiene bench's fixture.
 */
export async function seedKeys(
  store: EventStore,
  clock: ManualClock,
  count: number,
  days: number,
): Promise<string> {
  await seedTenant(store, TENANT);
  const accountId = newId(ID_PREFIX.serviceAccount);
  const created = benchAccountCreated(accountId, TENANT, 'swept-account', ['tickets:read']);
  await store.append(
    [
      {
        tenantId: TENANT,
        streamId: accountId,
        streamType: SERVICE_ACCOUNT_STREAM,
        expectedVersion: 0,
        events: created,
      },
    ],
    BENCH_METADATA,
  );
  const account = {
    id: accountId,
    tenantId: TENANT,
    status: 'active' as const,
    environment: 'production' as const,
    allowedScopes: ['tickets:read'],
    boundaries: [],
  };
  for (let done = 0; done < count; done += BATCH) {
    const appends: StreamAppend[] = [];
    for (let i = 0; i < Math.min(BATCH, count - done); i++) {
      const id = newId(ID_PREFIX.key);
      const secret = issueKeySecret(id, 'production');
      const events = decideIssue(
        {
          id,
          name: 'bulk',
          scopes: ['tickets:read'],
          boundaries: [],
          allowedCidrs: [],
          rateLimit: null,
          expiresInDays: days,
        },
        {
          account,
          policy: DEFAULT_POLICY,
          liveKeys: 0,
          now: clock.now(),
          secret: { prefix: secret.prefix, hash: secret.hash },
        },
      );
      appends.push({ tenantId: TENANT, streamId: id, streamType: KEY_STREAM, expectedVersion: 0, events });
    }
    await store.append(appends, BENCH_METADATA);
  }
  return accountId;
}

/** The sweep's candidate query, batch by batch, decoding each row as the sweep does. */
async function readCandidates(db: Db, now: Date): Promise<number> {
  let after = '';
  let count = 0;
  for (;;) {
    const rows = await expiryCandidates(db, now, after, BATCH);
    if (rows.length === 0) return count;
    rows.forEach(keyFromRow);
    count += rows.length;
    after = rows[rows.length - 1].id;
  }
}
