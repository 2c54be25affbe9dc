import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql, type Transaction } from 'kysely';
import { isUnavailableError } from '@keyward/core';
import type { Database, Db } from '@keyward/db';
import type { EventMetadata, EventStore } from '@keyward/event-store';
import type { UsageCode } from '@keyward/keys';
import { raiseSignals } from './raise-signals';
import type { RaiseSignal } from './signal';
import {
  DETAIL_LIST_MAX,
  MANY_SOURCES_MIN,
  MANY_SOURCES_WINDOW_MINUTES,
  NEW_SOURCE_LOOKBACK_MINUTES,
  NEW_SOURCE_MIN_HISTORY_MINUTES,
  VOLUME_BASELINE_MINUTES,
  VOLUME_SPIKE_MIN_CALLS,
  denialRaises,
  manySourcesRaise,
  newSourceRaise,
  volumeSpikeRaise,
  type CodeCalls,
} from './usage-detectors';

const MINUTE = 60_000;

/**
 * How long after its end a minute is evaluated. Usage reaches PostgreSQL a few seconds late: the
 * API holds counts in memory for up to a second before handing them to Redis, and the worker
 * flushes Redis every five seconds (KEYWARD_USAGE_FLUSH_CRON), or later when a flush is retried.
 * Thirty seconds lets the minute fill up; usage that arrives later still is counted in
 * usage_minutes but, its minute being checkpointed, is not evaluated.
 */
export const USAGE_SETTLE_MS = 30_000;
/**
 * The first run (no checkpoint yet) evaluates this many of the latest settled minutes, not the
 * whole history: signals are about now, and a new deployment must not raise a year of them.
 */
export const FIRST_RUN_LOOKBACK_MINUTES = 10;
/**
 * Minutes one run evaluates at most. A worker back after an outage catches up an hour per run
 * (one run a minute by default) instead of one run reading a day of usage at once; every minute
 * is still evaluated, in order, exactly once.
 */
export const MAX_MINUTES_PER_RUN = 60;
/**
 * How long one detector may take over one minute. Its statements are cancelled at this budget
 * (statement_timeout in its own read-only transaction) and the run stops waiting for it, so a
 * detector that has become slow costs each minute this much at most and the others still run.
 * A minute's detectors take milliseconds to a second or two even when busy (bench/evaluation.ts),
 * and the budget stays well inside the pool's own 30 s statement timeout.
 */
export const DETECTOR_BUDGET_MS = 10_000;
/**
 * A run starts no further minute after this long, leaving the rest to the next run (one a minute
 * by default), so a run of slow minutes neither piles runs up behind it nor holds the worker's
 * signals queue for long. A run always evaluates its first minute, so each run moves on.
 */
export const RUN_BUDGET_MS = 40_000;
/**
 * Raises per commit. At most raiseSignals' own slice (500), so each commit is one transaction
 * that also moves the checkpoint; a minute with more signals is committed in parts.
 */
const RAISES_PER_COMMIT = 250;
/** A skip's error message is kept this long at most: enough to tell one failure from another. */
const SKIP_ERROR_MAX = 500;
/** The pseudo-detector of a skip whose sightings were read but could not be raised. */
export const RAISE_STAGE = 'raise';

/** The checkpoint row's name in usage_evaluation_checkpoints. */
export const USAGE_EVALUATION_CHECKPOINT = 'usage';

/**
 * One behavioural detector: reads one minute of usage (with what it compares it to) and answers
 * the sightings to raise. It runs in a read-only transaction of its own whose statements are
 * cut at the detector budget; what it reads must be bounded by the minute's rows (index lookups
 * per key or per source of the minute, never a scan of the history per row).
 */
export interface UsageDetector {
  /** Names the detector where a minute it could not evaluate is recorded (usage_evaluation_skips). */
  name: string;
  detect(trx: Transaction<Database>, minute: Date): Promise<RaiseSignal[]>;
}

export interface UsageEvaluationOptions {
  /** Who the signal events are by; the usage evaluation itself unless told. */
  metadata?: EventMetadata;
  /** At most MAX_MINUTES_PER_RUN. */
  maxMinutes?: number;
  /** The detectors to run; USAGE_DETECTORS unless told. */
  detectors?: readonly UsageDetector[];
  /** DETECTOR_BUDGET_MS unless told. */
  detectorBudgetMs?: number;
  /** RUN_BUDGET_MS unless told. */
  runBudgetMs?: number;
}

/** A detector that could not evaluate a minute: the minute was checkpointed without its sightings. */
export interface SkippedDetection {
  /** The minute's start (ISO). */
  minute: string;
  /** The detector's name, or RAISE_STAGE when the sightings could not be raised. */
  detector: string;
  /** `timeout`: it ran past its budget; `failed`: it threw. */
  reason: 'timeout' | 'failed';
  error: string;
}

export interface UsageEvaluationResult {
  /** Minutes this run evaluated and checkpointed. */
  minutes: number;
  /** The first and the last of them (ISO, the minute's start), or null when there were none. */
  from: string | null;
  through: string | null;
  /** Sightings that opened a signal, counted an open one, or were dropped (abuseDetection off). */
  raised: number;
  counted: number;
  suppressed: number;
  /** Detectors that could not evaluate a minute of this run; recorded in usage_evaluation_skips. */
  skipped: SkippedDetection[];
  /** Another evaluation moved the checkpoint first: this run stopped there and wrote nothing more. */
  overtaken: boolean;
}

/** Where the evaluation stands: `lastMinute` done in full, and `parts` commits of the next minute. */
interface Checkpoint {
  lastMinute: number;
  parts: number;
}

/** The checkpoint moved under a run: another evaluation got there first. */
class CheckpointMoved extends Error {
  constructor() {
    super('the usage evaluation checkpoint moved: another evaluation committed first');
  }
}

/** A detector still running at its budget. */
class BudgetExceeded extends Error {
  constructor(name: string, budgetMs: number) {
    super(`detector ${name} ran past its budget of ${budgetMs} ms`);
  }
}

/** PostgreSQL's query_canceled, which statement_timeout raises. */
const PG_QUERY_CANCELED = '57014';

/** The start of the latest minute that ended at least USAGE_SETTLE_MS before `now`. */
export function lastSettledMinute(now: Date): number {
  return Math.floor((now.getTime() - USAGE_SETTLE_MS) / MINUTE) * MINUTE - MINUTE;
}

/**
 * The behavioural signals of counted usage (API.md "Usage, signals, reports"), for every settled
 * minute since the last run, a minute at a time: each detector reads the minute with what its rule
 * compares it to (usage-detectors.ts decides), and the sightings are raised or counted through
 * raiseSignals, so a condition seen in three minutes counts three times whether one run saw them
 * or three.
 *
 * A detector that throws or runs past its budget loses only its own sightings of that minute: the
 * others' are raised, and the minute is checkpointed with a usage_evaluation_skips row naming the
 * detector (the API's /metrics counts them), so one bad detector or one pathological minute can
 * neither starve the rest nor hold the checkpoint back. Only a database that cannot be reached
 * fails the run: nothing is skipped, and the next run starts again where this one stopped.
 *
 * Idempotent and safe to run concurrently: each commit of signals moves the checkpoint in the
 * same transaction, by compare-and-set on the checkpoint it read, so a retry (after a crash
 * before or after a commit) starts where the last commit left off, and of two runs at once only
 * one commits each minute; the other finds the checkpoint moved, rolls back, and stops.
 */
export async function evaluateUsage(
  db: Db,
  store: EventStore,
  now: Date,
  options: UsageEvaluationOptions = {},
): Promise<UsageEvaluationResult> {
  const started = performance.now();
  const metadata: EventMetadata = options.metadata ?? {
    actor: { type: 'system', id: 'usage-evaluation', name: 'usage evaluation' },
    reason: 'usage evaluation',
    correlationId: randomUUID(),
  };
  const maxMinutes = Math.max(1, Math.min(options.maxMinutes ?? MAX_MINUTES_PER_RUN, MAX_MINUTES_PER_RUN));
  const detectors = options.detectors ?? USAGE_DETECTORS;
  const budgetMs = options.detectorBudgetMs ?? DETECTOR_BUDGET_MS;
  const runBudgetMs = options.runBudgetMs ?? RUN_BUDGET_MS;
  const latest = lastSettledMinute(now);
  const start = await readCheckpoint(db, latest, now);
  const from = start.lastMinute + MINUTE;
  const through = Math.min(latest, from + (maxMinutes - 1) * MINUTE);
  const result: UsageEvaluationResult = {
    minutes: 0,
    from: null,
    through: null,
    raised: 0,
    counted: 0,
    suppressed: 0,
    skipped: [],
    overtaken: false,
  };
  if (through < from) return result;
  // `stored` is the checkpoint as committed; `reached` the last minute evaluated. A minute with
  // nothing to raise or record moves only `reached`: the checkpoint catches up with the next
  // commit, or once at the end, instead of with one update per quiet minute.
  let stored = start;
  let reached = start.lastMinute;
  const done = () => {
    const minutes = (reached - start.lastMinute) / MINUTE;
    if (minutes > 0) {
      result.minutes = minutes;
      result.from = new Date(from).toISOString();
      result.through = new Date(reached).toISOString();
    }
    return result;
  };
  const overtaken = () => {
    result.overtaken = true;
    reached = stored.lastMinute;
    return done();
  };

  for (let minute = from; minute <= through; minute += MINUTE) {
    if (minute > from && performance.now() - started >= runBudgetMs) break;
    const { raises, skips } = await detectMinute(db, detectors, minute, budgetMs);
    if (raises.length === 0 && skips.length === 0) {
      reached = minute;
      continue;
    }
    const parts = commitParts(raises);
    // A run that crashed between the parts of this minute committed the first few already.
    const resumed = stored.lastMinute === minute - MINUTE ? stored.parts : 0;
    let failed: SkippedDetection | undefined;
    for (let i = resumed; i < parts.length; i++) {
      const last = i === parts.length - 1;
      const next: Checkpoint = last
        ? { lastMinute: minute, parts: 0 }
        : { lastMinute: minute - MINUTE, parts: i + 1 };
      const outcome = await commit(
        db,
        store,
        parts[i],
        metadata,
        stored,
        next,
        last ? skips : [],
        now,
        result,
      );
      if (outcome === 'overtaken') return overtaken();
      if (outcome !== 'committed') {
        // Sightings that cannot be raised would stop every later minute too: recorded and passed.
        failed = skipOf(minute, RAISE_STAGE, outcome.error);
        break;
      }
      stored = next;
    }
    // No sightings, none left to commit, or a part that failed: the minute is closed here.
    if (stored.lastMinute !== minute || stored.parts !== 0) {
      const next = { lastMinute: minute, parts: 0 };
      const recorded = failed ? [...skips, failed] : skips;
      if (!(await db.transaction().execute((trx) => advance(trx, stored, next, recorded, now))))
        return overtaken();
      stored = next;
    }
    result.skipped.push(...skips, ...(failed ? [failed] : []));
    reached = minute;
  }
  if (reached !== stored.lastMinute || stored.parts !== 0) {
    const next = { lastMinute: reached, parts: 0 };
    if (!(await moveCheckpoint(db, stored, next, now))) return overtaken();
    stored = next;
  }
  return done();
}

/**
 * Every detector over one minute, each in its own read-only transaction cut at the budget. A
 * detector that fails is a skip of that minute, unless the database could not be reached: then
 * the run fails, and the minute is evaluated in full by a later run.
 */
async function detectMinute(
  db: Db,
  detectors: readonly UsageDetector[],
  minute: number,
  budgetMs: number,
): Promise<{ raises: RaiseSignal[]; skips: SkippedDetection[] }> {
  const raises: RaiseSignal[] = [];
  const skips: SkippedDetection[] = [];
  for (const detector of detectors) {
    try {
      raises.push(...(await runDetector(db, detector, new Date(minute), budgetMs)));
    } catch (error) {
      if (isUnavailableError(error)) throw error;
      skips.push(skipOf(minute, detector.name, error));
    }
  }
  return { raises, skips };
}

async function runDetector(
  db: Db,
  detector: UsageDetector,
  minute: Date,
  budgetMs: number,
): Promise<RaiseSignal[]> {
  const run = db.transaction().execute(async (trx) => {
    await sql`set transaction read only`.execute(trx);
    await sql`select set_config('statement_timeout', ${String(budgetMs)}, true)`.execute(trx);
    return detector.detect(trx, minute);
  });
  // statement_timeout cuts the detector's SQL; this cuts whatever else it waits for. A detector
  // given up on still ends within its statements' budget, and its outcome is then ignored.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BudgetExceeded(detector.name, budgetMs)), budgetMs + 1_000);
  });
  try {
    return await Promise.race([run, deadline]);
  } finally {
    clearTimeout(timer);
    run.catch(() => undefined);
  }
}

function skipOf(minute: number, detector: string, error: unknown): SkippedDetection {
  const e = error as { code?: string; message?: string };
  const timeout = error instanceof BudgetExceeded || e?.code === PG_QUERY_CANCELED;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return {
    minute: new Date(minute).toISOString(),
    detector,
    reason: timeout ? 'timeout' : 'failed',
    error: message.slice(0, SKIP_ERROR_MAX),
  };
}

/** The checkpoint, made on the first run to start FIRST_RUN_LOOKBACK_MINUTES back. */
async function readCheckpoint(db: Db, latest: number, now: Date): Promise<Checkpoint> {
  await db
    .insertInto('usage_evaluation_checkpoints')
    .values({
      name: USAGE_EVALUATION_CHECKPOINT,
      last_minute: new Date(latest - FIRST_RUN_LOOKBACK_MINUTES * MINUTE),
      committed_parts: 0,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await db
    .selectFrom('usage_evaluation_checkpoints')
    .select(['last_minute', 'committed_parts'])
    .where('name', '=', USAGE_EVALUATION_CHECKPOINT)
    .executeTakeFirstOrThrow();
  return { lastMinute: row.last_minute.getTime(), parts: row.committed_parts };
}

/** Compare-and-set: moves the checkpoint from `from` to `to`; false when it is no longer at `from`. */
async function moveCheckpoint(
  db: Db | Transaction<Database>,
  from: Checkpoint,
  to: Checkpoint,
  now: Date,
): Promise<boolean> {
  const moved = await db
    .updateTable('usage_evaluation_checkpoints')
    .set({ last_minute: new Date(to.lastMinute), committed_parts: to.parts, updated_at: now })
    .where('name', '=', USAGE_EVALUATION_CHECKPOINT)
    .where('last_minute', '=', new Date(from.lastMinute))
    .where('committed_parts', '=', from.parts)
    .executeTakeFirst();
  return moved.numUpdatedRows === 1n;
}

/** Moves the checkpoint and records the minute's skips, in the caller's transaction. */
async function advance(
  trx: Transaction<Database>,
  from: Checkpoint,
  to: Checkpoint,
  skips: SkippedDetection[],
  now: Date,
): Promise<boolean> {
  if (!(await moveCheckpoint(trx, from, to, now))) return false;
  if (skips.length > 0) {
    await trx
      .insertInto('usage_evaluation_skips')
      .values(
        skips.map((s) => ({
          minute: new Date(s.minute),
          detector: s.detector,
          reason: s.reason,
          error: s.error,
          skipped_at: now,
        })),
      )
      .onConflict((oc) => oc.columns(['minute', 'detector']).doNothing())
      .execute();
  }
  return true;
}

/**
 * Raises one part of a minute's sightings, moving the checkpoint (and, with the minute's last
 * part, recording its skips) in the same transaction: the append's guard. A guard that finds the
 * checkpoint moved throws, so the append rolls back. When nothing was appended (every sighting
 * suppressed) the guard did not run: the checkpoint moves on its own. `overtaken` when another
 * evaluation moved it first; the error when the sightings cannot be raised for another reason
 * than the database being away.
 */
async function commit(
  db: Db,
  store: EventStore,
  raises: RaiseSignal[],
  metadata: EventMetadata,
  from: Checkpoint,
  to: Checkpoint,
  skips: SkippedDetection[],
  now: Date,
  result: UsageEvaluationResult,
): Promise<'committed' | 'overtaken' | { error: unknown }> {
  let outcomes;
  try {
    outcomes = await raiseSignals(db, store, raises, metadata, {
      guard: async (trx) => {
        if (!(await advance(trx, from, to, skips, now))) throw new CheckpointMoved();
      },
    });
  } catch (error) {
    if (error instanceof CheckpointMoved) return 'overtaken';
    if (isUnavailableError(error)) throw error;
    return { error };
  }
  const appended = outcomes.some((o) => o.outcome === 'raised' || o.outcome === 'counted');
  if (!appended && !(await db.transaction().execute((trx) => advance(trx, from, to, skips, now))))
    return 'overtaken';
  for (const { outcome } of outcomes) {
    if (outcome === 'raised' || outcome === 'counted' || outcome === 'suppressed') result[outcome]++;
  }
  return 'committed';
}

/** A minute's sightings in a fixed order, cut into commits (the same cut on a retry). */
function commitParts(raises: RaiseSignal[]): RaiseSignal[][] {
  const key = (r: RaiseSignal) => `${r.tenantId}\u0000${r.type}\u0000${r.keyId ?? r.serviceAccountId}`;
  const sorted = [...raises].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const parts: RaiseSignal[][] = [];
  for (let i = 0; i < sorted.length; i += RAISES_PER_COMMIT)
    parts.push(sorted.slice(i, i + RAISES_PER_COMMIT));
  return parts;
}

// --- The detectors ------------------------------------------------------------------------------
//
// Each reads one minute. The minute's rows are found through usage_minutes_minute; what a rule
// compares them with is looked up once per key of the minute (history, baseline, the hour) or
// once per (key, source) of the minute (known sources), through indexes led by the key (migration
// 0011), so a minute costs what its own rows cost whatever the size of the history. The lookups
// name the key and not the tenant: a key id is unique across tenants (and a key's usage is always
// its own tenant's), and with the tenant named the planner can answer them from the primary key
// (tenant, minute, ...), which is how a key seen from 20,000 sources once scanned its tenant's
// whole history per source. Those that look for one row are subqueries with LIMIT, ordered by
// the key's index where it matters, so that they stay probes and are not turned into a join
// over the history.
//
// Usage of unknown and malformed keys is counted with no key (`key_id` ''), so it is about no
// key and skipped; calls that named no source (`source_ip` '') count as calls but not as a source.

interface KeyRow {
  tenant_id: string;
  key_id: string;
  service_account_id: string;
}

const minutes = (n: number) => sql`(${sql.lit(n)} * interval '1 minute')`;
const listMax = sql.lit(DETAIL_LIST_MAX);
const ref = (r: KeyRow, minute: Date) => ({
  tenantId: r.tenant_id,
  keyId: r.key_id,
  serviceAccountId: r.service_account_id,
  minute,
});

/** REVOKED_KEY_USED, EXPIRED_KEY_USED, ENVIRONMENT_MISMATCH, SCOPE_CREEP and DENIAL_BURST. */
const denials: UsageDetector = {
  name: 'denials',
  async detect(trx, minute) {
    // Every key of the minute with at least one refusal, with its calls by code.
    const rows = await sql<KeyRow & { by_code: Record<string, CodeCalls> }>`
      select tenant_id, key_id, service_account_id,
        jsonb_object_agg(code, jsonb_build_object('calls', calls, 'sources', sources, 'systems', systems)) as by_code
      from (
        select tenant_id, key_id, service_account_id, code, sum(count) as calls,
          coalesce((array_agg(distinct source_ip) filter (where source_ip <> ''))[1:${listMax}], '{}') as sources,
          coalesce((array_agg(distinct system) filter (where system <> ''))[1:${listMax}], '{}') as systems
        from usage_minutes
        where minute = ${minute} and key_id <> ''
        group by tenant_id, key_id, service_account_id, code
      ) c
      group by tenant_id, key_id, service_account_id
      having bool_or(code <> 'ALLOWED')`.execute(trx);
    return rows.rows.flatMap((row) => {
      const byCode: Partial<Record<UsageCode, CodeCalls>> = {};
      for (const [code, c] of Object.entries(row.by_code)) {
        byCode[code as UsageCode] = { calls: Number(c.calls), sources: c.sources, systems: c.systems };
      }
      return denialRaises({ ...ref(row, minute), byCode });
    });
  },
};

/** VOLUME_SPIKE: busy keys of the minute, with each key's allowed calls in the day before. */
const volumeSpike: UsageDetector = {
  name: 'volume-spike',
  async detect(trx, minute) {
    const rows = await sql<KeyRow & { allowed: string; baseline_allowed: string; baseline_active: string }>`
      select h.tenant_id, h.key_id, h.service_account_id, h.allowed,
        b.allowed as baseline_allowed, b.active as baseline_active
      from (
        select tenant_id, key_id, service_account_id, sum(count) as allowed
        from usage_minutes
        where minute = ${minute} and key_id <> '' and code = 'ALLOWED'
        group by tenant_id, key_id, service_account_id
        having sum(count) >= ${sql.lit(VOLUME_SPIKE_MIN_CALLS)}
      ) h
      cross join lateral (
        select coalesce(sum(u.count), 0) as allowed, count(distinct u.minute) as active
        from usage_minutes u
        where u.key_id = h.key_id and u.code = 'ALLOWED'
          and u.minute >= ${minute}::timestamptz - ${minutes(VOLUME_BASELINE_MINUTES)} and u.minute < ${minute}
      ) b`.execute(trx);
    return rows.rows.flatMap((row) => {
      const found = volumeSpikeRaise({
        ...ref(row, minute),
        allowed: Number(row.allowed),
        baselineAllowed: Number(row.baseline_allowed),
        baselineActiveMinutes: Number(row.baseline_active),
      });
      return found ? [found] : [];
    });
  },
};

/**
 * NEW_SOURCE: sources a key was allowed from in the minute that it was not allowed from in the
 * lookback. Whether a key has history (its first allowed minute) is asked once per key, and only
 * such keys' sources are looked up, each once, in the (key, source, minute) index of allowed calls.
 */
const newSource: UsageDetector = {
  name: 'new-source',
  async detect(trx, minute) {
    const rows = await sql<KeyRow & { new_sources: string; calls: string; sample: string[] }>`
      with used as (
        select tenant_id, key_id, service_account_id, source_ip, sum(count) as calls
        from usage_minutes
        where minute = ${minute} and key_id <> '' and source_ip <> '' and code = 'ALLOWED'
        group by tenant_id, key_id, service_account_id, source_ip
      ),
      seasoned as (
        select k.key_id
        from (select distinct key_id from used) k
        where (
          select h.minute from usage_minutes h
          where h.key_id = k.key_id and h.code = 'ALLOWED'
          order by h.minute limit 1
        ) < ${minute}::timestamptz - ${minutes(NEW_SOURCE_MIN_HISTORY_MINUTES)}
      )
      select u.tenant_id, u.key_id, u.service_account_id, count(*) as new_sources, sum(u.calls) as calls,
        (array_agg(u.source_ip order by u.source_ip collate "C"))[1:${listMax}] as sample
      from used u
      join seasoned s on s.key_id = u.key_id
      where (
        select 1 from usage_minutes p
        where p.key_id = u.key_id and p.source_ip = u.source_ip and p.code = 'ALLOWED'
          and p.minute >= ${minute}::timestamptz - ${minutes(NEW_SOURCE_LOOKBACK_MINUTES)} and p.minute < ${minute}
        limit 1
      ) is null
      group by u.tenant_id, u.key_id, u.service_account_id`.execute(trx);
    return rows.rows.flatMap((row) => {
      const found = newSourceRaise({
        ...ref(row, minute),
        newSources: Number(row.new_sources),
        calls: Number(row.calls),
        sample: row.sample,
        hasHistory: true,
      });
      return found ? [found] : [];
    });
  },
};

/** MANY_SOURCES: keys of the minute presented from many sources within the hour ending with it. */
const manySources: UsageDetector = {
  name: 'many-sources',
  async detect(trx, minute) {
    const rows = await sql<KeyRow & { sources: string; sample: string[] }>`
      select k.tenant_id, k.key_id, k.service_account_id, s.sources, s.sample
      from (
        select distinct tenant_id, key_id, service_account_id
        from usage_minutes
        where minute = ${minute} and key_id <> '' and source_ip <> ''
      ) k
      cross join lateral (
        select count(distinct u.source_ip) as sources, (array_agg(distinct u.source_ip))[1:${listMax}] as sample
        from usage_minutes u
        where u.key_id = k.key_id and u.source_ip <> ''
          and u.minute > ${minute}::timestamptz - ${minutes(MANY_SOURCES_WINDOW_MINUTES)} and u.minute <= ${minute}
      ) s
      where s.sources >= ${sql.lit(MANY_SOURCES_MIN)}`.execute(trx);
    return rows.rows.flatMap((row) => {
      const found = manySourcesRaise({
        ...ref(row, minute),
        distinctSources: Number(row.sources),
        sample: row.sample,
      });
      return found ? [found] : [];
    });
  },
};

/** The behavioural detectors the evaluation runs, each on its own budget. */
export const USAGE_DETECTORS: readonly UsageDetector[] = [denials, volumeSpike, newSource, manySources];
