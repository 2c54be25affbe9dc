/** The signal's event catalogue: one stream per signal. */
export const SIGNAL_TYPES = [
  'VOLUME_SPIKE',
  'DENIAL_BURST',
  'SCOPE_CREEP',
  'REVOKED_KEY_USED',
  'EXPIRED_KEY_USED',
  'ENVIRONMENT_MISMATCH',
  'NEW_SOURCE',
  'MANY_SOURCES',
  'ROTATION_DUE',
  'ROTATION_OVERDUE',
  'ROTATION_FAILED',
  'UNUSED_KEY',
  'ORPHANED_ACCOUNT',
  'KEY_EXPOSED',
] as const;
export type SignalType = (typeof SIGNAL_TYPES)[number];

/**
 * Signals about how a key is used. An account with `abuseDetection: false` raises none of them;
 * every other type is hygiene (rotation, unused keys, exposure) and always applies.
 */
export const BEHAVIOURAL_SIGNAL_TYPES: readonly SignalType[] = [
  'VOLUME_SPIKE',
  'DENIAL_BURST',
  'SCOPE_CREEP',
  'REVOKED_KEY_USED',
  'EXPIRED_KEY_USED',
  'ENVIRONMENT_MISMATCH',
  'NEW_SOURCE',
  'MANY_SOURCES',
];

export const SIGNAL_SEVERITIES = ['high', 'medium', 'low'] as const;
export type SignalSeverity = (typeof SIGNAL_SEVERITIES)[number];

export const SIGNAL_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type SignalStatus = (typeof SIGNAL_STATUSES)[number];

/** What was seen, as the detector describes it (a URL, a count, a source); never a secret. */
export type SignalDetail = Record<string, unknown>;

export interface SignalRaisedV1 {
  id: string;
  tenantId: string;
  type: SignalType;
  severity: SignalSeverity;
  serviceAccountId: string;
  keyId: string | null;
  detail: SignalDetail;
}

export type SignalEvent =
  | { type: 'SignalRaised'; data: SignalRaisedV1 }
  /** Seen again while unresolved: counted, `lastSeenAt` moves, the latest detail replaces the last. */
  | { type: 'SignalRecurred'; data: { detail: SignalDetail } }
  | { type: 'SignalAcknowledged'; data: { note: string | null } }
  | { type: 'SignalResolved'; data: { note: string | null; auto: boolean } };

export type SignalEventType = SignalEvent['type'];
export const SIGNAL_EVENT_TYPES: readonly SignalEventType[] = [
  'SignalRaised',
  'SignalRecurred',
  'SignalAcknowledged',
  'SignalResolved',
];
export const SIGNAL_STREAM = 'signal';
/** Signal ids have the form of every id here (see @keyward/core ids): a prefix and 20 base62. */
export const SIGNAL_ID_PREFIX = 'sig_';

export function isSignalEvent(event: { type: string }): event is SignalEvent {
  return (SIGNAL_EVENT_TYPES as readonly string[]).includes(event.type);
}

export function isSignalType(value: string): value is SignalType {
  return (SIGNAL_TYPES as readonly string[]).includes(value);
}
