import type { Clock } from '@keyward/core';
import type { KeyCache } from './key-cache';
import type { KeyReader } from './key.reader';
import type { RateLimiter } from './rate-limiter';
import { decide, parseCandidate, type DenialCode, type KeyRecord, type VerifyRequest } from './verify';

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
    private readonly clock: Clock,
  ) {}

  /** Keys are looked up by id in any tenant (ids are unique), so one cache serves both paths. */
  private lookup(keyId: string): Promise<KeyRecord | null> {
    return this.cache.get(keyId, () => this.reader.record(keyId));
  }

  async verify(tenantId: string, request: VerifyRequest): Promise<VerifyAnswer> {
    const parsed = parseCandidate(request.key);
    if (!parsed) return { valid: false, code: 'MALFORMED' };
    const found = await this.lookup(`key_${parsed.idPart}`);
    // Another tenant's key is, to this tenant, a key that does not exist.
    const record = found?.key.tenantId === tenantId ? found : null;
    const now = this.clock.now();
    const decision = decide(request.key, record, request, now);
    if (!decision.valid) return { valid: false, code: decision.code };
    const { key, account } = decision.record;
    let rateLimit: { remaining: number; resetAt: string } | null = null;
    if (key.rateLimit) {
      const state = await this.limiter.take(key.id, key.rateLimit, now);
      if (!state.allowed) return { valid: false, code: 'RATE_LIMITED' };
      rateLimit = { remaining: state.remaining, resetAt: state.resetAt.toISOString() };
    }
    return {
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
  }

  /** A key used as a credential for Keyward's own API: every check but scope, resource and rate. */
  async authenticate(candidate: string): Promise<KeyRecord | null> {
    const parsed = parseCandidate(candidate);
    if (!parsed) return null;
    const record = await this.lookup(`key_${parsed.idPart}`);
    const decision = decide(candidate, record, { key: candidate }, this.clock.now());
    return decision.valid ? decision.record : null;
  }
}
