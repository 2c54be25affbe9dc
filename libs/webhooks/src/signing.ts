import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The header every delivery carries (API.md "Operators, tenants, webhooks"). */
export const SIGNATURE_HEADER = 'Keyward-Signature';

/** How far a signature's timestamp may be from the receiver's clock: replay protection. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** A new signing secret: 32 bytes from the CSPRNG, base64url, with a prefix that says what it is. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

function hmac(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signatureHeader(secret: string, body: string, timestamp: number): string {
  return `t=${timestamp},v1=${hmac(secret, timestamp, body)}`;
}

export interface VerifyOptions {
  /** The receiver's clock, unix seconds. */
  now: number;
  toleranceSeconds?: number;
}

/**
 * For receivers (and tests): true when `header` signs exactly `body` with `secret` and its time is
 * within the tolerance of `now`. The comparison is constant-time, so timing tells an attacker
 * nothing about how much of a forged signature was right. Several v1 values (a secret being
 * rolled) pass when any one matches.
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string | undefined,
  { now, toleranceSeconds = DEFAULT_TOLERANCE_SECONDS }: VerifyOptions,
): boolean {
  if (!header) return false;
  const parts = header.split(',').map((part) => part.trim().split('='));
  const times = parts.filter(([k, v]) => k === 't' && v !== undefined && /^\d{1,12}$/.test(v));
  if (times.length !== 1) return false;
  const timestamp = Number(times[0]![1]);
  if (Math.abs(now - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(hmac(secret, timestamp, body), 'hex');
  return parts
    .filter(([k, v]) => k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v))
    .some(([, v]) => timingSafeEqual(Buffer.from(v!, 'hex'), expected));
}
