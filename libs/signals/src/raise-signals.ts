import { isUniqueViolation, newId } from '@keyward/core';
import type { Transaction } from 'kysely';
import type { Database, Db } from '@keyward/db';
import {
  StreamVersionConflict,
  type EventMetadata,
  type EventStore,
  type StreamAppend,
} from '@keyward/event-store';
import {
  decideRaise,
  decideResolve,
  signalSubject,
  type RaiseSignal,
  type Signal,
  type SignalAccount,
} from './signal';
import { SIGNAL_ID_PREFIX, SIGNAL_STREAM, type SignalEvent, type SignalType } from './signal.events';
import { signalFromRow } from './signals.projection';

/**
 * Raises and resolutions that lose a race (another raiser opened or counted the signal first, a
 * person acknowledged it) read again and decide again. Each lost race means someone else
 * committed, so this bounds how many can pile up at once.
 */
const ATTEMPTS = 20;
/** Appends per commit: a sweep that finds ten thousand unused keys writes them in slices. */
const CHUNK = 500;

export interface RaiseResult {
  /** `open already`: with `onlyIfAbsent`, an unresolved signal was there and is left as it is. */
  outcome: 'raised' | 'counted' | 'suppressed' | 'open already';
  signalId: string | null;
}

/** The append for one signal's decision. */
export function signalAppend(
  tenantId: string,
  decision: { signalId: string; expectedVersion: number; events: SignalEvent[] },
): StreamAppend {
  return {
    tenantId,
    streamId: decision.signalId,
    streamType: SIGNAL_STREAM,
    expectedVersion: decision.expectedVersion,
    events: decision.events,
  };
}

/** A write lost to a concurrent one: the other opened the signal, or counted it first. */
export function lostRace(error: unknown): boolean {
  return error instanceof StreamVersionConflict || isUniqueViolation(error, 'signals_unresolved');
}

const subjectKey = (r: {
  tenantId: string;
  type: SignalType;
  serviceAccountId: string;
  keyId: string | null;
}) => `${r.tenantId}|${r.type}|${signalSubject(r)}`;

/**
 * Raise-or-count for many sightings at once, outside any framework: the API's RaiseSignal handler,
 * the worker's sweeps and the usage detectors all come through here. One query reads the
 * accounts, one the unresolved signals, one append writes a slice; a slice that lost a race is
 * read and decided again, so a sighting is never both raised and counted, nor raised twice.
 *
 * Sightings of the same type on the same subject within one call are one sighting (the last
 * detail wins). A sighting on an account that no longer exists is dropped as suppressed.
 */
export async function raiseSignals(
  db: Db,
  store: EventStore,
  raises: readonly RaiseSignal[],
  metadata: EventMetadata,
  options: RaiseOptions = {},
): Promise<RaiseResult[]> {
  const unique = new Map<string, RaiseSignal>();
  for (const raise of raises) unique.set(subjectKey(raise), raise);
  const results = new Map<string, RaiseResult>();
  const all = [...unique.values()];
  for (let i = 0; i < all.length; i += CHUNK) {
    const slice = all.slice(i, i + CHUNK);
    const last = i + CHUNK >= all.length;
    const sliceOptions = { ...options, guard: last ? options.guard : undefined };
    for (const [key, result] of await raiseSlice(db, store, slice, metadata, sliceOptions))
      results.set(key, result);
  }
  return raises.map((r) => results.get(subjectKey(r))!);
}

export interface RaiseOptions {
  /**
   * Runs inside the transaction of the last slice's append (see EventStore.append): a detector
   * records there what it has evaluated, so the record and the signals commit together. When no
   * signal is written at all the guard does not run: record that yourself.
   */
  guard?: (trx: Transaction<Database>) => Promise<void>;
  /**
   * Raise only: an unresolved signal of the same type on the subject is left as it is instead of
   * counted. For sweeps that report a state (a key is unused), not a sighting: two sweeps finding
   * the same state at once must not make it count twice.
   */
  onlyIfAbsent?: boolean;
}

async function raiseSlice(
  db: Db,
  store: EventStore,
  raises: readonly RaiseSignal[],
  metadata: EventMetadata,
  options: RaiseOptions,
): Promise<Map<string, RaiseResult>> {
  const accounts = await signalAccounts(db, raises);
  for (let attempt = 1; ; attempt++) {
    const current = await unresolvedSignals(db, raises);
    const results = new Map<string, RaiseResult>();
    const appends: StreamAppend[] = [];
    for (const raise of raises) {
      const key = subjectKey(raise);
      const open = current.get(key);
      if (open && options.onlyIfAbsent) {
        results.set(key, { outcome: 'open already', signalId: open.id });
        continue;
      }
      const account = accounts.get(raise.serviceAccountId);
      const decision = account
        ? decideRaise(open ?? null, raise, account, newId(SIGNAL_ID_PREFIX))
        : ({ outcome: 'suppressed' } as const);
      if (decision.outcome === 'suppressed') {
        results.set(key, { outcome: 'suppressed', signalId: null });
        continue;
      }
      results.set(key, { outcome: decision.outcome, signalId: decision.signalId });
      appends.push(signalAppend(raise.tenantId, decision));
    }
    try {
      if (appends.length > 0) await store.append(appends, metadata, options.guard);
      return results;
    } catch (error) {
      if (!lostRace(error) || attempt >= ATTEMPTS) throw error;
    }
  }
}

/** Environment and abuseDetection of each account named, read in one query. */
async function signalAccounts(db: Db, raises: readonly RaiseSignal[]): Promise<Map<string, SignalAccount>> {
  const ids = [...new Set(raises.map((r) => r.serviceAccountId))];
  const rows = await db
    .selectFrom('service_accounts')
    .select(['id', 'tenant_id', 'environment', 'abuse_detection'])
    .where('id', 'in', ids)
    .execute();
  const byId = new Map<string, SignalAccount>();
  for (const row of rows) {
    byId.set(row.id, {
      environment: row.environment as SignalAccount['environment'],
      abuseDetection: row.abuse_detection,
    });
  }
  // An account id of another tenant is no account of this raise's tenant.
  const tenantOf = new Map(rows.map((r) => [r.id, r.tenant_id]));
  for (const raise of raises) {
    if (tenantOf.get(raise.serviceAccountId) !== raise.tenantId) byId.delete(raise.serviceAccountId);
  }
  return byId;
}

/**
 * The unresolved signal of each (tenant, type, subject) named, read in one query. By subject
 * (index `signals_subject`), then matched exactly here: a row-value IN list is not planned onto
 * an index, and a scan of every signal per slice made a sweep quadratic.
 */
async function unresolvedSignals(db: Db, subjects: readonly RaiseSignal[]): Promise<Map<string, Signal>> {
  const wanted = new Set(subjects.map(subjectKey));
  const rows = await db
    .selectFrom('signals')
    .selectAll()
    .where('status', '<>', 'resolved')
    .where('subject', 'in', [...new Set(subjects.map(signalSubject))])
    .where('type', 'in', [...new Set(subjects.map((s) => s.type))])
    .execute();
  const found = new Map<string, Signal>();
  for (const row of rows) {
    const signal = signalFromRow(row);
    if (wanted.has(subjectKey(signal))) found.set(subjectKey(signal), signal);
  }
  return found;
}

/**
 * Closes signals whose cause went away (a key used again, a due key rotated): `auto` resolutions
 * by the detector that saw it. Each signal is resolved at the version it was read at; one that
 * changed meanwhile (acknowledged, counted) is read again, and one resolved meanwhile is left be.
 */
export async function resolveSignals(
  db: Db,
  store: EventStore,
  signalIds: readonly string[],
  note: string,
  metadata: EventMetadata,
): Promise<number> {
  let resolved = 0;
  for (let i = 0; i < signalIds.length; i += CHUNK) {
    const ids = signalIds.slice(i, i + CHUNK);
    for (let attempt = 1; ; attempt++) {
      const rows = await db
        .selectFrom('signals')
        .selectAll()
        .where('id', 'in', ids)
        .where('status', '<>', 'resolved')
        .execute();
      const appends = rows.map(signalFromRow).map((s) =>
        signalAppend(s.tenantId, {
          signalId: s.id,
          expectedVersion: s.version,
          events: decideResolve(s, note, true),
        }),
      );
      try {
        if (appends.length > 0) await store.append(appends, metadata);
        resolved += appends.length;
        break;
      } catch (error) {
        if (!lostRace(error) || attempt >= ATTEMPTS) throw error;
      }
    }
  }
  return resolved;
}
