import type { UsageCode } from '@keyward/keys';
import type { RaiseSignal } from './signal';

/**
 * The behavioural detectors over counted usage (API.md "Usage, signals, reports"), as pure rules:
 * each takes what the evaluation's aggregate queries read for one key in one minute and answers
 * the signal to raise, if any. Every raise is on the key; its detail says what was seen (the
 * minute, counts, sources, systems), never a secret.
 */

/** SCOPE_CREEP: scope and boundary refusals of one key in one minute. A caller that asks once for
 * a scope it lacks is a misconfiguration; five times in a minute, it keeps reaching past its grant. */
export const SCOPE_CREEP_MIN_DENIALS = 5;

/** DENIAL_BURST: refusals of one key in one minute. Twenty is more than a client retrying a few
 * times after a bad deploy, and well below what a scripted probe or a credential-stuffing run makes. */
export const DENIAL_BURST_MIN_DENIALS = 20;
/** ...and at least this share of the key's calls that minute: a busy key with a few hundred calls
 * and twenty refusals is a client bug, not a burst. */
export const DENIAL_BURST_MIN_SHARE = 0.5;

/** VOLUME_SPIKE: allowed calls of one key in one minute below which no spike is worth a look,
 * whatever the baseline (a key going from 1 to 20 calls a minute is not abuse). */
export const VOLUME_SPIKE_MIN_CALLS = 100;
/** ...and how many times its average per minute over the baseline it must be. */
export const VOLUME_SPIKE_FACTOR = 10;
/** The baseline: the 24 hours before the minute, averaged over every minute of them (idle ones too). */
export const VOLUME_BASELINE_MINUTES = 24 * 60;
/** A key used in fewer minutes than this in the baseline (an hour's worth) has no baseline to
 * compare with: a new key, or a nightly job, would alarm on its first busy minute. */
export const VOLUME_BASELINE_MIN_ACTIVE_MINUTES = 60;

/** NEW_SOURCE: how far back a source counts as known to the key. A month covers weekly and
 * monthly jobs; beyond it, a source coming back is worth a look. */
export const NEW_SOURCE_LOOKBACK_MINUTES = 30 * 24 * 60;
/** ...and how old the key's earliest earlier use must be: a key in its first day is still finding
 * its sources (every deployment of it is new), so its first sources do not alarm. */
export const NEW_SOURCE_MIN_HISTORY_MINUTES = 24 * 60;

/** MANY_SOURCES: distinct source IPs one key is presented from within the window. A service runs
 * from a handful of addresses; ten in an hour is a key copied around, or shared where it should not be. */
export const MANY_SOURCES_MIN = 10;
/** The window, ending with (and including) the evaluated minute. */
export const MANY_SOURCES_WINDOW_MINUTES = 60;

/** Sources and systems named in one detail, at most: a detail stays small, the count says the rest. */
export const DETAIL_LIST_MAX = 10;

/** The key (and where it lives) a rule is evaluated for. */
export interface KeyRef {
  tenantId: string;
  serviceAccountId: string;
  keyId: string;
}

/** The calls of one code: how many, and (at most DETAIL_LIST_MAX of) the sources and systems. */
export interface CodeCalls {
  calls: number;
  sources: string[];
  systems: string[];
}

/** One key's calls in one minute, by the code each was answered with. */
export interface KeyMinuteCalls extends KeyRef {
  minute: Date;
  byCode: Partial<Record<UsageCode, CodeCalls>>;
}

/** One key's allowed calls in one minute and its use in the baseline before it. */
export interface KeyMinuteVolume extends KeyRef {
  minute: Date;
  allowed: number;
  /** Allowed calls in the VOLUME_BASELINE_MINUTES before the minute. */
  baselineAllowed: number;
  /** Minutes of that baseline with at least one allowed call. */
  baselineActiveMinutes: number;
}

/**
 * The sources one key was allowed from in one minute that it was not allowed from in the lookback,
 * counted: a minute can bring thousands, and the detail names only a few.
 */
export interface KeyMinuteNewSources extends KeyRef {
  minute: Date;
  /** How many new sources (calls that named no source are not a source). */
  newSources: number;
  /** Allowed calls from them in the minute. */
  calls: number;
  /** At most DETAIL_LIST_MAX of them. */
  sample: string[];
  /** The key was used (allowed) before NEW_SOURCE_MIN_HISTORY_MINUTES before the minute. */
  hasHistory: boolean;
}

/** The distinct sources one key was presented from in the window ending with the minute. */
export interface KeyMinuteSources extends KeyRef {
  minute: Date;
  distinctSources: number;
  /** At most DETAIL_LIST_MAX of them. */
  sample: string[];
}

const ALLOWED: UsageCode = 'ALLOWED';

function raise(key: KeyRef, type: RaiseSignal['type'], detail: Record<string, unknown>): RaiseSignal {
  return {
    tenantId: key.tenantId,
    type,
    serviceAccountId: key.serviceAccountId,
    keyId: key.keyId,
    detail,
  };
}

function union(lists: string[][]): string[] {
  return [...new Set(lists.flat())].sort().slice(0, DETAIL_LIST_MAX);
}

function callsOf(km: KeyMinuteCalls, codes: readonly UsageCode[]): number {
  return codes.reduce((n, code) => n + (km.byCode[code]?.calls ?? 0), 0);
}

function seenWith(km: KeyMinuteCalls, codes: readonly UsageCode[]) {
  const present = codes.flatMap((code) => (km.byCode[code] ? [km.byCode[code]] : []));
  return {
    sources: union(present.map((c) => c.sources)),
    systems: union(present.map((c) => c.systems)),
  };
}

/** A refusal that is itself the alarm: the key should not be in use at all, or not there. */
const ONE_DENIAL_RULES = [
  ['REVOKED', 'REVOKED_KEY_USED'],
  ['EXPIRED', 'EXPIRED_KEY_USED'],
  ['ENVIRONMENT_MISMATCH', 'ENVIRONMENT_MISMATCH'],
] as const;

const SCOPE_CODES: readonly UsageCode[] = ['INSUFFICIENT_SCOPE', 'OUT_OF_BOUNDARY'];

/**
 * REVOKED_KEY_USED, EXPIRED_KEY_USED and ENVIRONMENT_MISMATCH (any such refusal), SCOPE_CREEP and
 * DENIAL_BURST, for one key's calls in one minute.
 */
export function denialRaises(km: KeyMinuteCalls): RaiseSignal[] {
  const minute = km.minute.toISOString();
  const raises: RaiseSignal[] = [];
  for (const [code, type] of ONE_DENIAL_RULES) {
    const denials = callsOf(km, [code]);
    if (denials > 0) raises.push(raise(km, type, { minute, denials, ...seenWith(km, [code]) }));
  }

  const insufficientScope = callsOf(km, ['INSUFFICIENT_SCOPE']);
  const outOfBoundary = callsOf(km, ['OUT_OF_BOUNDARY']);
  if (insufficientScope + outOfBoundary >= SCOPE_CREEP_MIN_DENIALS) {
    raises.push(
      raise(km, 'SCOPE_CREEP', { minute, insufficientScope, outOfBoundary, ...seenWith(km, SCOPE_CODES) }),
    );
  }

  const denialCodes = (Object.keys(km.byCode) as UsageCode[]).filter((c) => c !== ALLOWED).sort();
  const denials = callsOf(km, denialCodes);
  const calls = denials + callsOf(km, [ALLOWED]);
  if (denials >= DENIAL_BURST_MIN_DENIALS && denials >= calls * DENIAL_BURST_MIN_SHARE) {
    const byCode = Object.fromEntries(denialCodes.map((c) => [c, km.byCode[c]!.calls]));
    raises.push(raise(km, 'DENIAL_BURST', { minute, denials, calls, byCode, ...seenWith(km, denialCodes) }));
  }
  return raises;
}

/** VOLUME_SPIKE: the minute's allowed calls against the key's average minute of the day before. */
export function volumeSpikeRaise(v: KeyMinuteVolume): RaiseSignal | null {
  if (v.allowed < VOLUME_SPIKE_MIN_CALLS) return null;
  if (v.baselineActiveMinutes < VOLUME_BASELINE_MIN_ACTIVE_MINUTES) return null;
  const baselinePerMinute = v.baselineAllowed / VOLUME_BASELINE_MINUTES;
  if (v.allowed < VOLUME_SPIKE_FACTOR * baselinePerMinute) return null;
  return raise(v, 'VOLUME_SPIKE', {
    minute: v.minute.toISOString(),
    calls: v.allowed,
    baselinePerMinute: Math.round(baselinePerMinute * 100) / 100,
    baselineActiveMinutes: v.baselineActiveMinutes,
  });
}

/** NEW_SOURCE: allowed from sources unknown to a key that has a history (no alarm in its first day). */
export function newSourceRaise(n: KeyMinuteNewSources): RaiseSignal | null {
  if (!n.hasHistory || n.newSources === 0 || n.calls === 0) return null;
  return raise(n, 'NEW_SOURCE', {
    minute: n.minute.toISOString(),
    sources: [...n.sample].sort().slice(0, DETAIL_LIST_MAX),
    newSources: n.newSources,
    calls: n.calls,
  });
}

/** MANY_SOURCES: presented from too many distinct source IPs within the hour ending with the minute. */
export function manySourcesRaise(s: KeyMinuteSources): RaiseSignal | null {
  if (s.distinctSources < MANY_SOURCES_MIN) return null;
  return raise(s, 'MANY_SOURCES', {
    minute: s.minute.toISOString(),
    windowMinutes: MANY_SOURCES_WINDOW_MINUTES,
    sources: s.distinctSources,
    sample: [...s.sample].sort().slice(0, DETAIL_LIST_MAX),
  });
}
