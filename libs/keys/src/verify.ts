import { timingSafeEqual } from 'node:crypto';
import { keyHash, parseKey, type ParsedKey } from './key-secret';
import { keyStatusAt, type Key } from './key';
import { ipAllowed, scopesCover, withinBoundaries } from './matching';

/** The codes of a refused verification, in the order API.md checks them. */
export const DENIAL_CODES = [
  'MALFORMED',
  'UNKNOWN',
  'REVOKED',
  'EXPIRED',
  'ACCOUNT_DISABLED',
  'ENVIRONMENT_MISMATCH',
  'IP_NOT_ALLOWED',
  'INSUFFICIENT_SCOPE',
  'OUT_OF_BOUNDARY',
  'RATE_LIMITED',
] as const;
export type DenialCode = (typeof DENIAL_CODES)[number];

export interface VerifyRequest {
  key: string;
  scope?: string;
  resource?: string;
  environment?: string;
  source?: { ip?: string; system?: string };
}

/** What the verifier needs to know of a key and its account; one read-model row. */
export interface KeyRecord {
  key: Pick<
    Key,
    | 'id'
    | 'tenantId'
    | 'serviceAccountId'
    | 'secretHash'
    | 'environment'
    | 'scopes'
    | 'boundaries'
    | 'allowedCidrs'
    | 'rateLimit'
    | 'expiresAt'
    | 'graceEndsAt'
    | 'revokedAt'
    | 'expiredAt'
  >;
  account: {
    id: string;
    name: string;
    environment: string;
    status: string;
    boundaries: string[];
    allowedCidrs: string[];
  };
}

export type Decision =
  { valid: true; record: KeyRecord } | { valid: false; code: DenialCode; record: KeyRecord | null };

/** First step, no I/O: the key's form and checksum. */
export function parseCandidate(candidate: string): ParsedKey | null {
  return parseKey(candidate);
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Every check but the rate limit (which needs Redis), in API.md's order. `record` is the key
 * found by the parsed id within the verifier's tenant, or null.
 */
export function decide(
  candidate: string,
  record: KeyRecord | null,
  request: VerifyRequest,
  now: Date,
): Decision {
  if (!record || !sameHash(keyHash(candidate), record.key.secretHash))
    return { valid: false, code: 'UNKNOWN', record: null };
  const deny = (code: DenialCode): Decision => ({ valid: false, code, record });
  const { key, account } = record;
  const status = keyStatusAt(key, now);
  if (status === 'revoked') return deny('REVOKED');
  if (status === 'expired') return deny('EXPIRED');
  if (account.status !== 'active') return deny('ACCOUNT_DISABLED');
  if (request.environment !== undefined && request.environment !== key.environment)
    return deny('ENVIRONMENT_MISMATCH');
  // A source ip that is not an address (see isIpAddress) is refused even where no CIDRs apply:
  // VerifyDto answers 400 first, but the gateway check reads it from a forwarded header.
  const ip = request.source?.ip;
  if (!ipAllowed(account.allowedCidrs, ip) || !ipAllowed(key.allowedCidrs, ip)) return deny('IP_NOT_ALLOWED');
  if (request.scope !== undefined && !scopesCover(key.scopes, request.scope))
    return deny('INSUFFICIENT_SCOPE');
  // A key with no boundaries of its own inherits its account's; an account with none is unbounded.
  // Under a boundary, a resource that is not canonical (matching.ts) is OUT_OF_BOUNDARY.
  const boundaries = key.boundaries.length ? key.boundaries : account.boundaries;
  if (request.resource !== undefined && !withinBoundaries(boundaries, request.resource))
    return deny('OUT_OF_BOUNDARY');
  return { valid: true, record };
}
