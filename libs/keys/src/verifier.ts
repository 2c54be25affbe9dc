import type { Clock } from '@keyward/core';
import type { KeyCache } from './key-cache';
import type { KeyReader } from './key.reader';
import type { RateLimiter } from './rate-limiter';
import { decide, parseCandidate, type DenialCode, type KeyRecord, type VerifyRequest } from './verify';

/** The outcome a verification is counted under: `ALLOWED`, or the code it was refused with. */
export type UsageCode = 'ALLOWED' | DenialCode;

/** One verification, as the verifier reports it. Unknown and malformed keys have no key or account. */
export interface Verification {
  tenantId: string;
  keyId: string | null;
  serviceAccountId: string | null;
  code: UsageCode;
  sourceIp: string | null;
  system: string | null;
  at: Date;
}

/** Where the verifier reports verifications (libs/usage); must not block or throw. */
export interface UsageSink {
  record(verification: Verification): void;
}

/** The `system` usage of a key as a caller of Keyward's own API is counted under. */
export const KEYWARD_API_SYSTEM = 'keyward-api';

export type VerifyAnswer =
  | {
      valid: true;
      keyId: string;
      serviceAccount: { id: string; name: string; environment: string; tenantId: string };
      scopes: string[];
      expiresAt: string;
      rateLimit: { remaining: number; resetAt: string } | null;
    }
  | { valid: false; code: DenialCode };

/** A verification's answer, when it was made, and for a rate-limited key when its window resets. */
export interface Verified {
  answer: VerifyAnswer;
  retryAt: Date | null;
  at: Date;
}

/**
 * The verify path: parse and checksum without I/O, the key with its account (from the cache, or
 * one indexed read), the decision, then the Redis rate limit. A store that cannot be reached
 * throws (503), so the answer is never `valid: true` without every check having run.
 */
export class Verifier {
  constructor(
    private readonly reader: KeyReader,
    private readonly cache: KeyCache,
    private readonly limiter: RateLimiter,
    private readonly usage: UsageSink,
    private readonly clock: Clock,
  ) {}

  /** Keys are looked up by id in any tenant (ids are unique), so one cache serves both paths. */
  private lookup(keyId: string): Promise<KeyRecord | null> {
    return this.cache.get(keyId, () => this.reader.record(keyId));
  }

  /** The answer, and for a rate-limited key when its window resets (a gateway's Retry-After). */
  async verify(tenantId: string, request: VerifyRequest): Promise<Verified> {
    const now = this.clock.now();
    const { answer, record, retryAt } = await this.decideAndLimit(tenantId, request, now);
    this.usage.record({
      tenantId,
      keyId: record?.key.id ?? null,
      serviceAccountId: record?.key.serviceAccountId ?? null,
      code: answer.valid ? 'ALLOWED' : answer.code,
      sourceIp: request.source?.ip ?? null,
      system: request.source?.system ?? null,
      at: now,
    });
    return { answer, retryAt, at: now };
  }

  private async decideAndLimit(
    tenantId: string,
    request: VerifyRequest,
    now: Date,
  ): Promise<{ answer: VerifyAnswer; record: KeyRecord | null; retryAt: Date | null }> {
    const parsed = parseCandidate(request.key);
    if (!parsed) return { answer: { valid: false, code: 'MALFORMED' }, record: null, retryAt: null };
    const found = await this.lookup(`key_${parsed.idPart}`);
    // Another tenant's key is, to this tenant, a key that does not exist.
    const record = found?.key.tenantId === tenantId ? found : null;
    const decision = decide(request.key, record, request, now);
    if (!decision.valid) {
      return { answer: { valid: false, code: decision.code }, record: decision.record, retryAt: null };
    }
    const { key, account } = decision.record;
    let rateLimit: { remaining: number; resetAt: string } | null = null;
    if (key.rateLimit) {
      const state = await this.limiter.take(key.id, key.rateLimit, now);
      if (!state.allowed)
        return { answer: { valid: false, code: 'RATE_LIMITED' }, record, retryAt: state.resetAt };
      rateLimit = { remaining: state.remaining, resetAt: state.resetAt.toISOString() };
    }
    const answer: VerifyAnswer = {
      valid: true,
      keyId: key.id,
      serviceAccount: {
        id: account.id,
        name: account.name,
        environment: account.environment,
        tenantId: key.tenantId,
      },
      scopes: key.scopes,
      // During a rotation's grace the key stops working when the grace ends: say that, so a
      // gateway caching the answer until expiresAt does not outlive the grace.
      expiresAt: key.graceEndsAt && key.graceEndsAt < key.expiresAt ? key.graceEndsAt : key.expiresAt,
      rateLimit,
    };
    return { answer, record, retryAt: null };
  }

  /**
   * A key used as a credential for Keyward's own API: every check but scope, resource and rate.
   * A refused key is counted here; a valid one is counted by `countApiUse` once the caller knows
   * whether the route let it through, so a key refused for its role is not counted as allowed.
   * Counted under system `keyward-api`, so a key used only against Keyward is not swept as unused.
   */
  async authenticate(candidate: string, sourceIp: string | null = null): Promise<KeyRecord | null> {
    const parsed = parseCandidate(candidate);
    if (!parsed) return null;
    const now = this.clock.now();
    const record = await this.lookup(`key_${parsed.idPart}`);
    const decision = decide(candidate, record, { key: candidate }, now);
    if (decision.valid) return decision.record;
    if (decision.record) this.countApiUse(decision.record, decision.code, sourceIp, now);
    return null;
  }

  /** One use of a key against Keyward's own API, with what it came to. */
  countApiUse(record: KeyRecord, code: UsageCode, sourceIp: string | null, at = this.clock.now()): void {
    this.usage.record({
      tenantId: record.key.tenantId,
      keyId: record.key.id,
      serviceAccountId: record.key.serviceAccountId,
      code,
      sourceIp,
      system: KEYWARD_API_SYSTEM,
      at,
    });
  }
}
