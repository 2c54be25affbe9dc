import { Conflict } from '@keyward/core';
import {
  BEHAVIOURAL_SIGNAL_TYPES,
  type SignalDetail,
  type SignalEvent,
  type SignalSeverity,
  type SignalStatus,
  type SignalType,
} from './signal.events';

export type SignalEnvironment = 'production' | 'staging' | 'development';

/** A signal as its stream folds: what the read model stores and decisions look at. */
export interface Signal {
  id: string;
  tenantId: string;
  type: SignalType;
  severity: SignalSeverity;
  status: SignalStatus;
  serviceAccountId: string;
  keyId: string | null;
  detail: SignalDetail;
  count: number;
  firstSeenAt: Date;
  lastSeenAt: Date;
  acknowledgedAt: Date | null;
  acknowledgedNote: string | null;
  resolvedAt: Date | null;
  resolvedNote: string | null;
  autoResolved: boolean;
  version: number;
}

export type SignalFact = SignalEvent & { occurredAt: Date };

/** API.md: severity rises with the environment the account (and so its keys) lives in. */
export function severityFor(environment: SignalEnvironment): SignalSeverity {
  return environment === 'production' ? 'high' : environment === 'staging' ? 'medium' : 'low';
}

export function isBehavioural(type: SignalType): boolean {
  return BEHAVIOURAL_SIGNAL_TYPES.includes(type);
}

/**
 * What one signal is about, for "raised once, then counted": a type on one key, or on the
 * account when no key is involved (an orphaned account).
 */
export function signalSubject(signal: { serviceAccountId: string; keyId: string | null }): string {
  return signal.keyId ?? signal.serviceAccountId;
}

export function evolveSignal(state: Signal | null, fact: SignalFact): Signal {
  if (fact.type === 'SignalRaised') {
    const d = fact.data;
    return {
      id: d.id,
      tenantId: d.tenantId,
      type: d.type,
      severity: d.severity,
      status: 'open',
      serviceAccountId: d.serviceAccountId,
      keyId: d.keyId,
      detail: d.detail,
      count: 1,
      firstSeenAt: fact.occurredAt,
      lastSeenAt: fact.occurredAt,
      acknowledgedAt: null,
      acknowledgedNote: null,
      resolvedAt: null,
      resolvedNote: null,
      autoResolved: false,
      version: 1,
    };
  }
  if (!state) throw new Error(`${fact.type} before SignalRaised`);
  const next = { ...state, version: state.version + 1 };
  switch (fact.type) {
    case 'SignalRecurred':
      return { ...next, count: state.count + 1, lastSeenAt: fact.occurredAt, detail: fact.data.detail };
    case 'SignalAcknowledged':
      return {
        ...next,
        status: 'acknowledged',
        acknowledgedAt: fact.occurredAt,
        acknowledgedNote: fact.data.note,
      };
    case 'SignalResolved':
      return {
        ...next,
        status: 'resolved',
        resolvedAt: fact.occurredAt,
        resolvedNote: fact.data.note,
        autoResolved: fact.data.auto,
      };
  }
}

export function foldSignal(facts: readonly SignalFact[]): Signal | null {
  return facts.reduce<Signal | null>((state, fact) => evolveSignal(state, fact), null);
}

/** A detector's (or a handler's) report that something was seen. */
export interface RaiseSignal {
  tenantId: string;
  type: SignalType;
  serviceAccountId: string;
  keyId: string | null;
  detail: SignalDetail;
}

/** The account as signal decisions see it. */
export interface SignalAccount {
  environment: SignalEnvironment;
  abuseDetection: boolean;
}

export type RaiseDecision =
  | { outcome: 'suppressed' }
  | { outcome: 'raised' | 'counted'; signalId: string; expectedVersion: number; events: SignalEvent[] };

/**
 * Raise-or-count. `current` is the unresolved signal of the same (tenant, type, subject), if
 * any: seen again, it is counted rather than repeated. A resolved one is history, so a new
 * sighting opens a new signal with `newId`.
 */
export function decideRaise(
  current: Signal | null,
  raise: RaiseSignal,
  account: SignalAccount,
  newId: string,
): RaiseDecision {
  if (isBehavioural(raise.type) && !account.abuseDetection) return { outcome: 'suppressed' };
  if (current && current.status !== 'resolved') {
    if (
      current.tenantId !== raise.tenantId ||
      current.type !== raise.type ||
      signalSubject(current) !== signalSubject(raise)
    ) {
      // A caller bug, never a user's: the signal looked up is not the one this raise is about.
      throw new Error(`signal ${current.id} is not the open ${raise.type} on ${signalSubject(raise)}`);
    }
    return {
      outcome: 'counted',
      signalId: current.id,
      expectedVersion: current.version,
      events: [{ type: 'SignalRecurred', data: { detail: raise.detail } }],
    };
  }
  return {
    outcome: 'raised',
    signalId: newId,
    expectedVersion: 0,
    events: [
      {
        type: 'SignalRaised',
        data: {
          id: newId,
          tenantId: raise.tenantId,
          type: raise.type,
          severity: severityFor(account.environment),
          serviceAccountId: raise.serviceAccountId,
          keyId: raise.keyId,
          detail: raise.detail,
        },
      },
    ],
  };
}

/** Someone is looking into it; only an open signal can be acknowledged. */
export function decideAcknowledge(state: Signal, note: string | null): SignalEvent[] {
  if (state.status !== 'open') {
    throw new Conflict(`signal ${state.id} is ${state.status} and cannot be acknowledged`);
  }
  return [{ type: 'SignalAcknowledged', data: { note } }];
}

/** Closed, by a person or (`auto`) by the detector that saw the cause go away. */
export function decideResolve(state: Signal, note: string | null, auto = false): SignalEvent[] {
  if (state.status === 'resolved') throw new Conflict(`signal ${state.id} is already resolved`);
  return [{ type: 'SignalResolved', data: { note, auto } }];
}
