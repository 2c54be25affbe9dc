/**
 * The key's event catalogue: one stream per key. Events hold the key's SHA-256 and visible
 * prefix, never the key.
 */
export interface RateLimit {
  limit: number;
  windowSeconds: number;
}

export type KeyEnvironment = 'production' | 'staging' | 'development';

export interface KeyIssuedV1 {
  id: string;
  tenantId: string;
  serviceAccountId: string;
  name: string;
  prefix: string;
  secretHash: string;
  environment: KeyEnvironment;
  scopes: string[];
  boundaries: string[];
  allowedCidrs: string[];
  rateLimit: RateLimit | null;
  expiresAt: string;
  /** The key this one replaces, when issued by a rotation. */
  replaces: string | null;
}

/** Why a key was revoked; the operator's own words go in the event's reason. */
export type RevocationCause =
  'manual' | 'break-glass' | 'account-deleted' | 'exposed' | 'unused' | 'delivery-failed';

export type KeyEvent =
  | { type: 'KeyIssued'; data: KeyIssuedV1 }
  | { type: 'KeyRotated'; data: { replacedBy: string; graceEndsAt: string } }
  /**
   * A scheduled rotation issued `replacedBy` and is delivering its secret; this key keeps working
   * in full (no grace yet) until the delivery is confirmed (KeyRotated) or abandoned.
   */
  | { type: 'KeyRotationStarted'; data: { replacedBy: string } }
  /** The delivery failed: `replacedBy` is revoked in the same commit, and this key is as before. */
  | { type: 'KeyRotationAbandoned'; data: { replacedBy: string; error: string } }
  | { type: 'KeyRevoked'; data: { cause: RevocationCause; emergency: boolean } }
  | { type: 'KeyExpired'; data: Record<string, never> }
  | { type: 'KeyScopesNarrowed'; data: { removed: string[] } }
  | { type: 'KeyExposed'; data: { url: string | null; source: string | null } };

export type KeyEventType = KeyEvent['type'];
export const KEY_EVENT_TYPES: readonly KeyEventType[] = [
  'KeyIssued',
  'KeyRotated',
  'KeyRotationStarted',
  'KeyRotationAbandoned',
  'KeyRevoked',
  'KeyExpired',
  'KeyScopesNarrowed',
  'KeyExposed',
];
export const KEY_STREAM = 'key';
/**
 * The account's stream type. Declared here because keys cannot import accounts (accounts builds
 * on keys); accounts re-exports it, so there is one name for it.
 */
export const SERVICE_ACCOUNT_STREAM = 'service-account';

export function isKeyEvent(event: { type: string }): event is KeyEvent {
  return (KEY_EVENT_TYPES as readonly string[]).includes(event.type);
}
