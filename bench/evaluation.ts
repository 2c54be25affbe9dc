import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql, type RawBuilder } from 'kysely';
import { SERVICE_ACCOUNT_STREAM } from '@keyward/accounts';
import { ManualClock, newId, ID_PREFIX } from '@keyward/core';
import { EventStore } from '@keyward/event-store';
import { inlineProjections } from '@keyward/projections';
import { evaluateUsage } from '@keyward/signals';
import {
  BENCH_METADATA,
  benchAccountCreated,
  benchDatabase,
  elapsed,
  round,
  seedTenant,
  timed,
} from './support';

/**
 * `npm run bench -- evaluation`: the usage evaluation of one busy minute. One key is verified from
 * 20,000 distinct sources in that minute (1,000 of them known to it), in a tenant with a 30-day
 * history of 1,000,000 usage rows; a revoked key is used 2,400 times in the same minute. The
 * baseline is a plain read of the minute's own rows. Target: the minute evaluates in under 5 s.
 */
const DATABASE = 'keyward_bench_evaluation';
const TENANT = 'bench';
const MINUTE = 60_000;
const HISTORY_ROWS = Number(process.env.BENCH_EVALUATION_HISTORY ?? 1_000_000);
const SOURCES = Number(process.env.BENCH_EVALUATION_SOURCES ?? 20_000);
const HISTORY_MINUTES = 30 * 24 * 60;
const PER_MINUTE = Math.ceil(HISTORY_ROWS / HISTORY_MINUTES);
const OTHER_KEYS = 100;
const POOL = 50_000;
const BUSY_HISTORY_MINUTES = 36 * 60;
const KNOWN_SOURCES = 1_000;
const REVOKED_USES = 2_400;
const TARGET_MS = 5_000;

/** The n-th address of the history's pool; the busy minute's sources are numbered past it. */
const ip = (n: RawBuilder<unknown>) =>
  sql`('10.' || ((${n}) / 65536) || '.' || (((${n}) / 256) % 256) || '.' || ((${n}) % 256))`;

export async function evaluationBench(): Promise<number> {
  const startedAt = Date.now();
  const loadBefore = os.loadavg();
  console.log(
    `evaluation benchmark: database ${DATABASE}; one minute of ${SOURCES} distinct sources on one key, ` +
      `${HISTORY_ROWS} rows of history over 30 days`,
  );
  const db = await benchDatabase(DATABASE);
  const clock = new ManualClock('2026-02-01T00:00:45Z');
  const store = new EventStore(db, inlineProjections, clock);
  await seedTenant(store, TENANT);
  const accountId = newId(ID_PREFIX.serviceAccount);
  await store.append(
    [
      {
        tenantId: TENANT,
        streamId: accountId,
        streamType: SERVICE_ACCOUNT_STREAM,
        expectedVersion: 0,
        events: benchAccountCreated(accountId, TENANT, 'busy-account', ['tickets:read']),
      },
    ],
    BENCH_METADATA,
  );
  const busyKey = newId(ID_PREFIX.key);
  const revokedKey = newId(ID_PREFIX.key);
  // 00:00:45: the latest settled minute is 23:59, the one evaluated.
  const minute = new Date(clock.now().getTime() - 45_000 - MINUTE);

  // --- History: the tenant's month, HISTORY_ROWS rows in all. Its other keys make most of it,
  // PER_MINUTE sources a minute from a pool; the busy key has been used once a minute for the
  // last BUSY_HISTORY_MINUTES, so it has history older than a day (NEW_SOURCE applies) and a
  // baseline (VOLUME_SPIKE applies). This is the shape that made the old NEW_SOURCE query scan the
  // tenant's month once per source: a key whose first use is recent, in a tenant with a long history.
  const others = HISTORY_ROWS - BUSY_HISTORY_MINUTES;
  // A million rows into a table with six indexes takes longer than the pool's statement timeout.
  await db.transaction().execute(async (trx) => {
    await sql`set local statement_timeout = 0`.execute(trx);
    await sql`
      insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
      select ${TENANT}, ${minute}::timestamptz - (m * interval '1 minute'), 'key_history' || (s % ${sql.lit(OTHER_KEYS)}),
        ${accountId}, 'ALLOWED', ${ip(sql`(m * ${sql.lit(PER_MINUTE)} + s) % ${sql.lit(POOL)}`)}, '', 1
      from generate_series(1, ${sql.lit(HISTORY_MINUTES)}) as m, generate_series(0, ${sql.lit(PER_MINUTE - 1)}) as s
      where (m - 1) * ${sql.lit(PER_MINUTE)} + s < ${sql.lit(others)}`.execute(trx);
    await sql`
      insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
      select ${TENANT}, ${minute}::timestamptz - (m * interval '1 minute'), ${busyKey}, ${accountId}, 'ALLOWED',
        ${ip(sql`m`)}, '', 1
      from generate_series(1, ${sql.lit(BUSY_HISTORY_MINUTES)}) as m`.execute(trx);
    // --- The minute: SOURCES distinct sources on the busy key, KNOWN_SOURCES of them known to it...
    await sql`
      insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
      select ${TENANT}, ${minute}, ${busyKey}, ${accountId}, 'ALLOWED',
        ${ip(sql`case when s <= ${sql.lit(KNOWN_SOURCES)} then s else ${sql.lit(POOL)} + s end`)}, '', 1
      from generate_series(1, ${sql.lit(SOURCES)}) as s`.execute(trx);
    // ...and the revoked key, used REVOKED_USES times from three sources.
    await sql`
      insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
      select ${TENANT}, ${minute}, ${revokedKey}, ${accountId}, 'REVOKED', '192.0.2.' || s, 'billing',
        ${sql.lit(REVOKED_USES / 3)}
      from generate_series(1, 3) as s`.execute(trx);
  });
  await sql`
    insert into usage_evaluation_checkpoints (name, last_minute, committed_parts, updated_at)
    values ('usage', ${new Date(minute.getTime() - MINUTE)}, 0, now())`.execute(db);
  await sql`vacuum analyze usage_minutes`.execute(db);
  const rows = await sql<{ n: string }>`select count(*) as n from usage_minutes`.execute(db);
  console.log(`fixture: ${rows.rows[0].n} usage rows (${elapsed(startedAt)})`);

  // --- Baseline: the minute's own rows, read once.
  const baseline = await timed(async () => {
    const read = await sql<{ n: string }>`
      select count(*) as n from (select * from usage_minutes where minute = ${minute}) m`.execute(db);
    return Number(read.rows[0].n);
  });
  // --- The evaluation of that minute.
  const evaluation = await timed(() => evaluateUsage(db, store, clock.now()));
  const result = evaluation.result;
  if (result.minutes !== 1) throw new Error(`the evaluation covered ${result.minutes} minutes, not 1`);
  if (result.skipped.length > 0) throw new Error(`detectors were skipped: ${JSON.stringify(result.skipped)}`);
  const signals = await db
    .selectFrom('signals')
    .select(['type', 'key_id'])
    .where('tenant_id', '=', TENANT)
    .orderBy('type')
    .execute();
  const raised = signals.map((s) => `${s.type}@${s.key_id === busyKey ? 'busy' : 'revoked'}`);
  const expected = [
    'DENIAL_BURST@revoked',
    'MANY_SOURCES@busy',
    'NEW_SOURCE@busy',
    'REVOKED_KEY_USED@revoked',
    'VOLUME_SPIKE@busy',
  ];
  if (raised.join() !== expected.join())
    throw new Error(`raised ${raised.join(', ')}; expected ${expected.join(', ')}`);

  const figures = [
    { run: "plain read of the minute's rows (baseline)", rows: baseline.result, ms: round(baseline.ms, 1) },
    { run: 'evaluation of the minute (5 signals)', rows: baseline.result, ms: round(evaluation.ms, 1) },
  ];
  const ratio = round(figures[1].ms / figures[0].ms, 1);
  console.log('');
  for (const f of figures)
    console.log(`${f.run.padEnd(44)} ${String(f.rows).padStart(7)} rows  ${String(f.ms).padStart(9)} ms`);
  console.log(
    `evaluation vs baseline: ${ratio}x the time; target under ${TARGET_MS / 1000} s: ` +
      `${evaluation.ms < TARGET_MS ? 'met' : 'MISSED'} (${round(evaluation.ms / 1000, 2)} s)`,
  );
  const file = path.join(__dirname, 'results', 'evaluation.json');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(
    file,
    `${JSON.stringify(
      {
        benchmark: 'evaluation',
        at: new Date().toISOString(),
        machine: { node: process.version, cpus: os.cpus().length, loadBefore, loadAfter: os.loadavg() },
        fixture: { historyRows: HISTORY_ROWS, minuteSources: SOURCES, revokedUses: REVOKED_USES },
        figures,
        evaluationVsBaseline: ratio,
        result,
        signals: raised,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote bench/results/evaluation.json (${elapsed(startedAt)})`);
  return evaluation.ms < TARGET_MS ? 0 : 1;
}
