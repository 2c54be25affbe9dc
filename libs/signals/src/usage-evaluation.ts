import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
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
  type KeyMinuteNewSources,
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
 * Raises per commit. At most raiseSignals' own slice (500), so each commit is one transaction
 * that also moves the checkpoint; a minute with more signals is committed in parts.
 */
const RAISES_PER_COMMIT = 250;

const CHECKPOINT = 'usage';

export interface UsageEvaluationOptions {
  /** Who the signal events are by; the usage evaluation itself unless told. */
  metadata?: EventMetadata;
  /** At most MAX_MINUTES_PER_RUN. */
  maxMinutes?: number;
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

/** The start of the latest minute that ended at least USAGE_SETTLE_MS before `now`. */
export function lastSettledMinute(now: Date): number {
  return Math.floor((now.getTime() - USAGE_SETTLE_MS) / MINUTE) * MINUTE - MINUTE;
}

/**
 * The behavioural signals of counted usage (API.md "Usage, signals, reports"), for every settled
 * minute since the last run: four aggregate queries read the minutes' usage with what each rule
 * compares it to (usage-detectors.ts decides), and the sightings are raised or counted through
 * raiseSignals, a minute at a time, so a condition seen in three minutes counts three times
 * whether one run saw them or three.
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
  const metadata: EventMetadata = options.metadata ?? {
    actor: { type: 'system', id: 'usage-evaluation', name: 'usage evaluation' },
    reason: 'usage evaluation',
    correlationId: randomUUID(),
  };
  const maxMinutes = Math.max(1, Math.min(options.maxMinutes ?? MAX_MINUTES_PER_RUN, MAX_MINUTES_PER_RUN));
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
    overtaken: false,
  };
  if (through < from) return result;

  const byMinute = await detect(db, new Date(from), new Date(through));
  let current = start;
  const done = () => {
    const minutes = (current.lastMinute - start.lastMinute) / MINUTE;
    if (minutes > 0) {
      result.minutes = minutes;
      result.from = new Date(from).toISOString();
      result.through = new Date(current.lastMinute).toISOString();
    }
    return result;
  };

  for (const minute of [...byMinute.keys()].sort((a, b) => a - b)) {
    const parts = commitParts(byMinute.get(minute)!);
    // A run that crashed between the parts of this minute committed the first few already.
    const skip = current.lastMinute === minute - MINUTE ? current.parts : 0;
    for (let i = skip; i < parts.length; i++) {
      const next: Checkpoint =
        i === parts.length - 1
          ? { lastMinute: minute, parts: 0 }
          : { lastMinute: minute - MINUTE, parts: i + 1 };
      if (!(await commit(db, store, parts[i], metadata, current, next, now, result))) {
        result.overtaken = true;
        return done();
      }
      current = next;
    }
  }
  // The minutes with nothing to raise (or whatever is left after the last that had something).
  if (current.lastMinute !== through || current.parts !== 0) {
    const next = { lastMinute: through, parts: 0 };
    if (!(await moveCheckpoint(db, current, next, now))) {
      result.overtaken = true;
      return done();
    }
    current = next;
  }
  return done();
}

/** The checkpoint, made on the first run to start FIRST_RUN_LOOKBACK_MINUTES back. */
async function readCheckpoint(db: Db, latest: number, now: Date): Promise<Checkpoint> {
  await db
    .insertInto('usage_evaluation_checkpoints')
    .values({
      name: CHECKPOINT,
      last_minute: new Date(latest - FIRST_RUN_LOOKBACK_MINUTES * MINUTE),
      committed_parts: 0,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await db
    .selectFrom('usage_evaluation_checkpoints')
    .select(['last_minute', 'committed_parts'])
    .where('name', '=', CHECKPOINT)
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
    .where('name', '=', CHECKPOINT)
    .where('last_minute', '=', new Date(from.lastMinute))
    .where('committed_parts', '=', from.parts)
    .executeTakeFirst();
  return moved.numUpdatedRows === 1n;
}

/**
 * Raises one part of a minute's sightings, moving the checkpoint in the same transaction (the
 * append's guard). A guard that finds the checkpoint moved throws, so the append rolls back.
 * When nothing was appended (every sighting suppressed) the guard did not run: the checkpoint
 * moves on its own. False when another evaluation moved it first.
 */
async function commit(
  db: Db,
  store: EventStore,
  raises: RaiseSignal[],
  metadata: EventMetadata,
  from: Checkpoint,
  to: Checkpoint,
  now: Date,
  result: UsageEvaluationResult,
): Promise<boolean> {
  let outcomes;
  try {
    outcomes = await raiseSignals(db, store, raises, metadata, {
      guard: async (trx) => {
        if (!(await moveCheckpoint(trx, from, to, now))) throw new CheckpointMoved();
      },
    });
  } catch (error) {
    if (error instanceof CheckpointMoved) return false;
    throw error;
  }
  const appended = outcomes.some((o) => o.outcome === 'raised' || o.outcome === 'counted');
  if (!appended && !(await moveCheckpoint(db, from, to, now))) return false;
  for (const { outcome } of outcomes) {
    if (outcome === 'raised' || outcome === 'counted' || outcome === 'suppressed') result[outcome]++;
  }
  return true;
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

interface KeyMinuteRow {
  tenant_id: string;
  key_id: string;
  service_account_id: string;
  minute: Date;
}

const minutes = (n: number) => sql`(${sql.lit(n)} * interval '1 minute')`;
const listMax = sql.lit(DETAIL_LIST_MAX);

/**
 * Every rule's sightings in the minutes `from`..`through` (inclusive), by minute. Usage of unknown
 * and malformed keys is counted with no key (`key_id` ''), so it is about no key and skipped;
 * calls that named no source (`source_ip` '') count as calls but not as a source.
 */
async function detect(db: Db, from: Date, through: Date): Promise<Map<number, RaiseSignal[]>> {
  const byMinute = new Map<number, RaiseSignal[]>();
  const add = (minute: Date, raise: RaiseSignal | null) => {
    if (!raise) return;
    const list = byMinute.get(minute.getTime());
    if (list) list.push(raise);
    else byMinute.set(minute.getTime(), [raise]);
  };
  const ref = (r: KeyMinuteRow) => ({
    tenantId: r.tenant_id,
    keyId: r.key_id,
    serviceAccountId: r.service_account_id,
    minute: r.minute,
  });

  // Refusals: every key-minute with at least one, with its calls by code.
  const denials = await sql<KeyMinuteRow & { by_code: Record<string, CodeCalls> }>`
    select tenant_id, key_id, service_account_id, minute,
      jsonb_object_agg(code, jsonb_build_object('calls', calls, 'sources', sources, 'systems', systems)) as by_code
    from (
      select tenant_id, key_id, service_account_id, minute, code, sum(count) as calls,
        coalesce((array_agg(distinct source_ip) filter (where source_ip <> ''))[1:${listMax}], '{}') as sources,
        coalesce((array_agg(distinct system) filter (where system <> ''))[1:${listMax}], '{}') as systems
      from usage_minutes
      where minute >= ${from} and minute <= ${through} and key_id <> ''
      group by tenant_id, key_id, service_account_id, minute, code
    ) c
    group by tenant_id, key_id, service_account_id, minute
    having bool_or(code <> 'ALLOWED')`.execute(db);
  for (const row of denials.rows) {
    const byCode: Partial<Record<UsageCode, CodeCalls>> = {};
    for (const [code, c] of Object.entries(row.by_code)) {
      byCode[code as UsageCode] = { calls: Number(c.calls), sources: c.sources, systems: c.systems };
    }
    for (const raise of denialRaises({ ...ref(row), byCode })) add(row.minute, raise);
  }

  // Busy key-minutes, with the key's allowed calls in the day before each.
  const volumes = await sql<
    KeyMinuteRow & { allowed: string; baseline_allowed: string; baseline_active: string }
  >`
    select h.tenant_id, h.key_id, h.service_account_id, h.minute, h.allowed,
      b.allowed as baseline_allowed, b.active as baseline_active
    from (
      select tenant_id, key_id, service_account_id, minute, sum(count) as allowed
      from usage_minutes
      where minute >= ${from} and minute <= ${through} and key_id <> '' and code = 'ALLOWED'
      group by tenant_id, key_id, service_account_id, minute
      having sum(count) >= ${sql.lit(VOLUME_SPIKE_MIN_CALLS)}
    ) h
    cross join lateral (
      select coalesce(sum(u.count), 0) as allowed, count(distinct u.minute) as active
      from usage_minutes u
      where u.key_id = h.key_id and u.tenant_id = h.tenant_id and u.code = 'ALLOWED'
        and u.minute >= h.minute - ${minutes(VOLUME_BASELINE_MINUTES)} and u.minute < h.minute
    ) b`.execute(db);
  for (const row of volumes.rows) {
    add(
      row.minute,
      volumeSpikeRaise({
        ...ref(row),
        allowed: Number(row.allowed),
        baselineAllowed: Number(row.baseline_allowed),
        baselineActiveMinutes: Number(row.baseline_active),
      }),
    );
  }

  // Sources a key was allowed from that it was not allowed from in the lookback before.
  const fresh = await sql<KeyMinuteRow & { source_ip: string; calls: string; has_history: boolean }>`
    select c.tenant_id, c.key_id, c.service_account_id, c.minute, c.source_ip, c.calls,
      exists (
        select 1 from usage_minutes h
        where h.key_id = c.key_id and h.tenant_id = c.tenant_id and h.code = 'ALLOWED'
          and h.minute < c.minute - ${minutes(NEW_SOURCE_MIN_HISTORY_MINUTES)}
      ) as has_history
    from (
      select tenant_id, key_id, service_account_id, minute, source_ip, sum(count) as calls
      from usage_minutes
      where minute >= ${from} and minute <= ${through} and key_id <> '' and source_ip <> ''
        and code = 'ALLOWED'
      group by tenant_id, key_id, service_account_id, minute, source_ip
    ) c
    where not exists (
      select 1 from usage_minutes p
      where p.key_id = c.key_id and p.source_ip = c.source_ip and p.tenant_id = c.tenant_id
        and p.code = 'ALLOWED'
        and p.minute >= c.minute - ${minutes(NEW_SOURCE_LOOKBACK_MINUTES)} and p.minute < c.minute
    )`.execute(db);
  const newSources = new Map<string, KeyMinuteNewSources>();
  for (const row of fresh.rows) {
    const id = `${row.key_id}|${row.minute.getTime()}`;
    let seen = newSources.get(id);
    if (!seen) newSources.set(id, (seen = { ...ref(row), sources: [], hasHistory: row.has_history }));
    seen.sources.push({ ip: row.source_ip, calls: Number(row.calls) });
  }
  for (const seen of newSources.values()) add(seen.minute, newSourceRaise(seen));

  // Key-minutes whose key was presented from many sources within the hour ending with the minute.
  const spread = await sql<KeyMinuteRow & { sources: string; sample: string[] }>`
    select k.tenant_id, k.key_id, k.service_account_id, k.minute, s.sources, s.sample
    from (
      select distinct tenant_id, key_id, service_account_id, minute
      from usage_minutes
      where minute >= ${from} and minute <= ${through} and key_id <> '' and source_ip <> ''
    ) k
    cross join lateral (
      select count(distinct u.source_ip) as sources, (array_agg(distinct u.source_ip))[1:${listMax}] as sample
      from usage_minutes u
      where u.key_id = k.key_id and u.tenant_id = k.tenant_id and u.source_ip <> ''
        and u.minute > k.minute - ${minutes(MANY_SOURCES_WINDOW_MINUTES)} and u.minute <= k.minute
    ) s
    where s.sources >= ${sql.lit(MANY_SOURCES_MIN)}`.execute(db);
  for (const row of spread.rows) {
    add(
      row.minute,
      manySourcesRaise({ ...ref(row), distinctSources: Number(row.sources), sample: row.sample }),
    );
  }
  return byMinute;
}
