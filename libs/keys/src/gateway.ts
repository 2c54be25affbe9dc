import type { VerifyAnswer } from './verifier';
import type { DenialCode } from './verify';

/** What a gateway asks about one request, gathered from its headers and query (apps/api). */
export interface GatewayQuestion {
  key: string;
  scope?: string;
  resource?: string;
  environment?: string;
  system?: string;
  sourceIp?: string;
}

export type GatewayOutcome =
  | { status: 200; headers: Record<string, string> }
  | { status: 401 | 403 | 429; code: DenialCode; detail: string; headers: Record<string, string> };

/** A key that is not a live key of the tenant: the gateway should ask the caller to authenticate. */
const UNAUTHENTICATED: readonly DenialCode[] = [
  'MALFORMED',
  'UNKNOWN',
  'REVOKED',
  'EXPIRED',
  'ACCOUNT_DISABLED',
];

/**
 * API.md "Gateway check": the verify answer as status codes and headers. A valid key's identity
 * goes to the upstream in X-Keyward-* headers; a refusal names its code in X-Keyward-Code.
 */
export function gatewayOutcome(answer: VerifyAnswer, retryAt: Date | null, now: Date): GatewayOutcome {
  if (answer.valid) {
    return {
      status: 200,
      headers: {
        'X-Keyward-Key-Id': answer.keyId,
        'X-Keyward-Account-Id': answer.serviceAccount.id,
        'X-Keyward-Account-Name': answer.serviceAccount.name,
        'X-Keyward-Environment': answer.serviceAccount.environment,
        'X-Keyward-Tenant': answer.serviceAccount.tenantId,
        'X-Keyward-Scopes': answer.scopes.join(' '),
      },
    };
  }
  const code = answer.code;
  if (UNAUTHENTICATED.includes(code)) {
    return {
      status: 401,
      code,
      detail: `the key is refused: ${code}`,
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    };
  }
  if (code === 'RATE_LIMITED') {
    const seconds = retryAt ? Math.max(1, Math.ceil((retryAt.getTime() - now.getTime()) / 1000)) : 1;
    return {
      status: 429,
      code,
      detail: `the key's rate limit is used up; retry in ${seconds} s`,
      headers: { 'Retry-After': String(seconds) },
    };
  }
  return { status: 403, code, detail: `the key may not do this: ${code}`, headers: {} };
}
