import { sql, type RawBuilder } from 'kysely';
import type { Db } from '@keyward/db';
import {
  StreamVersionConflict,
  type EventMetadata,
  type EventStore,
  type StreamAppend,
} from '@keyward/event-store';
import type { RotateKeyJob } from '@keyward/jobs';
import { DEFAULT_POLICY, KEY_STREAM, keyIsLive } from '@keyward/keys';
import {
  raiseSignals,
  resolveSignals,
  type RaiseSignal,
  type SignalStatus,
  type SignalType,
} from '@keyward/signals';
import { rotationActions, type PastSignal, type RotationCandidate } from './hygiene-rules';

/** Rows per query; each batch is one raise, one revocation append, one queueing. */
const BATCH = 1_000;

/** Where the sweep hands keys to rotate: the rotations queue, in the worker. */
export interface RotationScheduler {
  schedule(jobs: readonly RotateKeyJob[]): Promise<void>;
}

export interface HygieneSweepResult {
  rotationsQueued: number;
  /** Signals raised, by type. */
  raised: Partial<Record<SignalType, number>>;
  revokedUnused: number;
  /** Signals closed because their cause went away. */
  resolved: number;
}

/**
 * The hygiene sweep (issue 5, API.md "Usage, signals"): rotation due and overdue, unused keys
 * and orphaned accounts. Set-based: a query per rule and batch finds what needs doing, one
 * append raises its signals, and signals whose cause went away (a key rotated or used again, an
 * account given a key) are resolved in bulk.
 *
 * Safe to run twice or concurrently: hygiene signals are raised once per episode (the queries
 * skip subjects that already have one), raising is raise-or-count under the signals' unique
 * index, revocations are checked against the version read, and rotations are queued under a job
 * id made of the key and its version.
 */
export async function sweepHygiene(
  db: Db,
  store: EventStore,
  rotations: RotationScheduler,
  now: Date,
  options: { correlationId?: string } = {},
): Promise<HygieneSweepResult> {
  const metadata = (reason: string): EventMetadata => ({
    actor: { type: 'system', id: 'hygiene-sweep', name: 'hygiene sweep' },
    reason,
    correlationId: options.correlationId ?? `hygiene-${now.toISOString()}`,
  });
  const result: HygieneSweepResult = { rotationsQueued: 0, raised: {}, revokedUnused: 0, resolved: 0 };
  const raise = async (raises: RaiseSignal[], reason: string) => {
    if (raises.length === 0) return;
    // A state found again (by a concurrent sweep) is not a second sighting: raise, never count.
    const outcomes = await raiseSignals(db, store, raises, metadata(reason), { onlyIfAbsent: true });
    raises.forEach((r, i) => {
      if (outcomes[i].outcome === 'raised') result.raised[r.type] = (result.raised[r.type] ?? 0) + 1;
    });
  };

  // Causes that went away first, so a key rotated since the last run is not reported again.
  result.resolved += await resolveGone(db, store, now, metadata('resolved by the hygiene sweep'));

  await sweepRotations(db, now, rotations, raise, result);
  await sweepUnused(db, store, now, raise, metadata('unused'), result);
  await raise(await orphanedAccounts(db, now), 'no live key and no use');
  return result;
}

// ---- rotation ----

async function sweepRotations(
  db: Db,
  now: Date,
  rotations: RotationScheduler,
  raise: (raises: RaiseSignal[], reason: string) => Promise<void>,
  result: HygieneSweepResult,
) {
  for await (const page of keyPages(db, now)) {
    const rows = await db
      .selectFrom('keys')
      .innerJoin('service_accounts as a', 'a.id', 'keys.service_account_id')
      .select([
        'keys.id',
        'keys.tenant_id',
        'keys.service_account_id',
        'keys.version',
        'keys.prefix',
        'keys.created_at',
        'keys.updated_at',
        'keys.pending_replacement',
        'a.rotation_policy',
        'a.secret_delivery_url',
      ])
      .where('keys.id', 'in', page)
      .where('a.status', '=', 'active')
      .where('a.rotation_policy', 'is not', null)
      .where((eb) => keyIsLive(eb, now))
      .where('keys.replaced_by', 'is', null)
      .where(
        sql<boolean>`keys.created_at <= ${now}::timestamptz - ((a.rotation_policy->>'maxKeyAgeDays')::int - (a.rotation_policy->>'notifyBeforeDays')::int) * interval '1 day'`,
      )
      .execute();
    if (rows.length === 0) continue;

    const past = await pastSignals(
      db,
      rows.map((r) => r.id),
      ['ROTATION_DUE', 'ROTATION_OVERDUE', 'ROTATION_FAILED'],
    );
    const jobs: RotateKeyJob[] = [];
    const raises: RaiseSignal[] = [];
    for (const row of rows) {
      const key: RotationCandidate = {
        keyId: row.id,
        tenantId: row.tenant_id,
        serviceAccountId: row.service_account_id,
        version: row.version,
        prefix: row.prefix,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        pendingReplacement: row.pending_replacement,
        policy: row.rotation_policy!,
        secretDeliveryUrl: row.secret_delivery_url,
      };
      const actions = rotationActions(key, past.get(row.id) ?? [], now);
      if (actions.autoRotate) jobs.push({ tenantId: key.tenantId, keyId: key.keyId, version: key.version });
      for (const type of actions.raise) {
        raises.push({
          tenantId: key.tenantId,
          type,
          serviceAccountId: key.serviceAccountId,
          keyId: key.keyId,
          detail: {
            prefix: key.prefix,
            createdAt: key.createdAt.toISOString(),
            maxKeyAgeDays: key.policy.maxKeyAgeDays,
            notifyBeforeDays: key.policy.notifyBeforeDays,
          },
        });
      }
    }
    await raise(raises, 'rotation policy');
    if (jobs.length > 0) await rotations.schedule(jobs);
    result.rotationsQueued += jobs.length;
  }
}

/**
 * The live keys, a page of ids at a time in id order: each rule's query then joins and filters
 * one page through the primary key. Filtering the whole table per page instead made the sweep
 * quadratic in the number of keys (a join over every key, a hundred times for 100,000).
 */
async function* keyPages(db: Db, now: Date): AsyncGenerator<string[]> {
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('keys')
      .select('keys.id')
      .where('keys.id', '>', after)
      .where((eb) => keyIsLive(eb, now))
      .orderBy('keys.id')
      .limit(BATCH)
      .execute();
    if (rows.length === 0) return;
    yield rows.map((r) => r.id);
    after = rows[rows.length - 1].id;
  }
}

// ---- unused keys ----

/** The tenant's policy value, or the default when it never changed it (policies store changes only). */
function policyDays(field: 'unusedAfterDays' | 'revokeUnusedAfterDays'): RawBuilder<number | null> {
  const fallback = DEFAULT_POLICY[field];
  return sql<number | null>`coalesce((p.policy->>${field})::int, ${fallback}::int)`;
}

async function sweepUnused(
  db: Db,
  store: EventStore,
  now: Date,
  raise: (raises: RaiseSignal[], reason: string) => Promise<void>,
  revokeMetadata: EventMetadata,
  result: HygieneSweepResult,
) {
  const since = sql<Date>`coalesce(u.last_used_at, keys.created_at)`;
  for await (const page of keyPages(db, now)) {
    const rows = await db
      .selectFrom('keys')
      .innerJoin('service_accounts as a', 'a.id', 'keys.service_account_id')
      .leftJoin('key_usage as u', 'u.key_id', 'keys.id')
      .leftJoin('tenant_policies as p', 'p.tenant_id', 'keys.tenant_id')
      .select([
        'keys.id',
        'keys.tenant_id',
        'keys.service_account_id',
        'keys.version',
        'keys.prefix',
        'u.last_used_at',
        since.as('since'),
        policyDays('unusedAfterDays').as('unused_after_days'),
        policyDays('revokeUnusedAfterDays').as('revoke_after_days'),
      ])
      .where('a.status', '=', 'active')
      .where((eb) => keyIsLive(eb, now))
      .where(
        sql<boolean>`${since} <= ${now}::timestamptz - ${policyDays('unusedAfterDays')} * interval '1 day'`,
      )
      .where('keys.id', 'in', page)
      .execute();
    if (rows.length === 0) continue;

    // One UNUSED_KEY per episode of disuse: none raised since the key was last used (or made).
    const past = await pastSignalsSince(
      db,
      rows.map((r) => ({ subject: r.id, since: r.since })),
      'UNUSED_KEY',
    );
    const due = (days: number | null, at: Date) =>
      days !== null && at.getTime() <= now.getTime() - days * 24 * 3600 * 1000;
    const toRevoke = rows.filter((r) => due(r.revoke_after_days, r.since));
    await raise(
      rows
        .filter((r) => !past.has(r.id))
        .map((r) => ({
          tenantId: r.tenant_id,
          type: 'UNUSED_KEY' as const,
          serviceAccountId: r.service_account_id,
          keyId: r.id,
          detail: {
            prefix: r.prefix,
            lastUsedAt: r.last_used_at?.toISOString() ?? null,
            unusedAfterDays: r.unused_after_days,
            revoked: due(r.revoke_after_days, r.since),
          },
        })),
      'unused',
    );
    if (toRevoke.length === 0) continue;
    const appends: StreamAppend[] = toRevoke.map((r) => ({
      tenantId: r.tenant_id,
      streamId: r.id,
      streamType: KEY_STREAM,
      expectedVersion: r.version,
      events: [{ type: 'KeyRevoked', data: { cause: 'unused', emergency: false } }],
    }));
    try {
      await store.append(appends, revokeMetadata);
      result.revokedUnused += appends.length;
    } catch (error) {
      // A key changed since it was read (used, rotated, revoked): the next run looks again.
      if (!(error instanceof StreamVersionConflict)) throw error;
    }
  }
}

// ---- orphaned accounts ----

/**
 * Active accounts with no live key and no use for the tenant's unusedAfterDays (a never-used
 * account counts from its creation), that have no ORPHANED_ACCOUNT since that time.
 */
async function orphanedAccounts(db: Db, now: Date): Promise<RaiseSignal[]> {
  const since = sql<Date>`coalesce(au.last_seen_at, a.created_at)`;
  const rows = await db
    .selectFrom('service_accounts as a')
    .leftJoin('account_usage as au', 'au.service_account_id', 'a.id')
    .leftJoin('tenant_policies as p', 'p.tenant_id', 'a.tenant_id')
    .select(['a.id', 'a.tenant_id', 'a.name', 'au.last_seen_at'])
    .where('a.status', '=', 'active')
    .where(
      sql<boolean>`${since} <= ${now}::timestamptz - ${policyDays('unusedAfterDays')} * interval '1 day'`,
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('keys')
            .select('keys.id')
            .whereRef('keys.service_account_id', '=', 'a.id')
            .where((eb) => keyIsLive(eb, now)),
        ),
      ),
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('signals as s')
            .select('s.id')
            .whereRef('s.subject', '=', 'a.id')
            .where('s.type', '=', 'ORPHANED_ACCOUNT')
            .where((eb) => eb.or([eb('s.status', '<>', 'resolved'), eb('s.first_seen_at', '>=', since)])),
        ),
      ),
    )
    .execute();
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    type: 'ORPHANED_ACCOUNT' as const,
    serviceAccountId: r.id,
    keyId: null,
    detail: { name: r.name, lastSeenAt: r.last_seen_at?.toISOString() ?? null },
  }));
}

// ---- causes gone ----

/**
 * Unresolved hygiene signals whose cause went away: a rotation signal of a key since rotated or
 * no longer live; an UNUSED_KEY of a key used after it was raised, or no longer live; an
 * ORPHANED_ACCOUNT of an account that has a live key again, or is no longer active.
 */
async function resolveGone(db: Db, store: EventStore, now: Date, metadata: EventMetadata): Promise<number> {
  const keySignals = await db
    .selectFrom('signals as s')
    .leftJoin('keys', 'keys.id', 's.key_id')
    .leftJoin('key_usage as u', 'u.key_id', 's.key_id')
    .select(['s.id', 's.type'])
    .where('s.status', '<>', 'resolved')
    .where('s.type', 'in', ['ROTATION_DUE', 'ROTATION_OVERDUE', 'ROTATION_FAILED', 'UNUSED_KEY'])
    .where((eb) =>
      eb.or([
        eb('keys.id', 'is', null),
        eb.not(keyIsLive(eb, now)),
        eb.and([eb('s.type', '<>', 'UNUSED_KEY'), eb('keys.replaced_by', 'is not', null)]),
        eb.and([eb('s.type', '=', 'UNUSED_KEY'), eb('u.last_used_at', '>', eb.ref('s.first_seen_at'))]),
      ]),
    )
    .execute();
  const orphans = await db
    .selectFrom('signals as s')
    .leftJoin('service_accounts as a', 'a.id', 's.service_account_id')
    .select('s.id')
    .where('s.status', '<>', 'resolved')
    .where('s.type', '=', 'ORPHANED_ACCOUNT')
    .where(({ or, eb, exists, selectFrom }) =>
      or([
        eb('a.status', 'is distinct from', 'active'),
        exists(
          selectFrom('keys')
            .select('keys.id')
            .whereRef('keys.service_account_id', '=', 's.service_account_id')
            .where((k) => keyIsLive(k, now)),
        ),
      ]),
    )
    .execute();
  const ids = [...keySignals.map((s) => s.id), ...orphans.map((s) => s.id)];
  if (ids.length === 0) return 0;
  return resolveSignals(db, store, ids, 'the cause went away', metadata);
}

// ---- signals already had ----

async function pastSignals(
  db: Db,
  subjects: readonly string[],
  types: readonly SignalType[],
): Promise<Map<string, PastSignal[]>> {
  const rows = await db
    .selectFrom('signals')
    .select(['subject', 'type', 'status'])
    .where('subject', 'in', subjects)
    .where('type', 'in', types)
    .execute();
  const bySubject = new Map<string, PastSignal[]>();
  for (const row of rows) {
    const list = bySubject.get(row.subject) ?? [];
    list.push({ type: row.type as SignalType, status: row.status as SignalStatus });
    bySubject.set(row.subject, list);
  }
  return bySubject;
}

/** Subjects that have a signal of `type` unresolved, or first seen at or after their `since`. */
async function pastSignalsSince(
  db: Db,
  subjects: readonly { subject: string; since: Date }[],
  type: SignalType,
): Promise<Set<string>> {
  const since = new Map(subjects.map((s) => [s.subject, s.since.getTime()]));
  const rows = await db
    .selectFrom('signals')
    .select(['subject', 'status', 'first_seen_at'])
    .where('subject', 'in', [...since.keys()])
    .where('type', '=', type)
    .execute();
  return new Set(
    rows
      .filter((r) => r.status !== 'resolved' || r.first_seen_at.getTime() >= since.get(r.subject)!)
      .map((r) => r.subject),
  );
}
