import { timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, RateLimited, Unauthenticated, type Clock } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { AuthFailureThrottle, isOperatorTokenForm, sha256, type Caller, type Role } from '@keyward/auth';
import { Verifier, type KeyRecord } from '@keyward/keys';
import { OperatorReader } from '@keyward/tenants';
import { Metrics } from '../observability/metrics';
import { OperatorCache } from './operator-cache';

/** A caller, and for a service-account key the record it was authenticated with. */
export interface Authenticated {
  caller: Caller;
  key: KeyRecord | null;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;
const SEND_BEARER = 'send Authorization: Bearer <credential>';

/**
 * Who a `Bearer <credential>` header is: the bootstrap token, an operator (from the operator
 * cache when warm, so a busy verifier costs no PostgreSQL read) or a service-account key. Shared
 * by the auth guard (the Authorization header) and the gateway check (its X-Keyward-Verifier).
 * Throws Unauthenticated for a missing, malformed, unknown or deleted credential.
 *
 * Failed authentications are counted per source ip (AuthFailureThrottle); once a source is over
 * its limit, its failures throw RateLimited (429 with Retry-After) instead. The credential is
 * always checked first: a valid one passes from any source, throttled or not, and never waits
 * for Redis, which only failures touch. No header at all is refused without being counted: it
 * guesses nothing.
 */
@Injectable()
export class Authenticator {
  constructor(
    @Inject(CONFIG) private readonly config: KeywardConfig,
    @Inject(OperatorReader) private readonly operators: OperatorReader,
    @Inject(OperatorCache) private readonly operatorCache: OperatorCache,
    @Inject(Verifier) private readonly verifier: Verifier,
    @Inject(AuthFailureThrottle) private readonly throttle: AuthFailureThrottle,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  private readonly logger = new Logger('Authenticator');
  /** Hashed once: every request compares against it. */
  private readonly bootstrapDigest =
    this.config.bootstrapToken === undefined ? null : sha256(this.config.bootstrapToken);

  async authenticate(header: string | undefined, sourceIp: string | null): Promise<Authenticated> {
    if (!header) throw new Unauthenticated(SEND_BEARER);
    const match = BEARER.exec(header);
    const authenticated = match ? await this.identify(match[1], sourceIp) : null;
    if (authenticated) return authenticated;
    throw await this.failed(sourceIp, match ? 'the credential is not valid' : SEND_BEARER);
  }

  /** The error a failed authentication answers: 401, or 429 once its source is over the limit. */
  private async failed(sourceIp: string | null, detail: string): Promise<Unauthenticated | RateLimited> {
    if (sourceIp === null) return new Unauthenticated(detail);
    const now = this.clock.now();
    const counted = await this.throttle.failed(sourceIp, now);
    this.metrics.authenticationFailed(counted.counter, counted.throttled);
    if (counted.crossed) {
      // Once per source and window on the instance that counted past the limit. An address is
      // not a secret; the credentials tried are never logged.
      this.logger.warn(
        { sourceIp, limit: this.throttle.limit.limit, until: counted.windowEndsAt.toISOString() },
        'failed authentications from this source are over the limit; further failures answer 429',
      );
    }
    if (!counted.throttled) return new Unauthenticated(detail);
    const seconds = Math.max(1, Math.ceil((counted.windowEndsAt.getTime() - now.getTime()) / 1000));
    return new RateLimited(
      `too many failed authentications from this address; retry in ${seconds} s`,
      seconds,
    );
  }

  private async identify(credential: string, sourceIp: string | null): Promise<Authenticated | null> {
    // One SHA-256 of the credential serves both the bootstrap comparison (constant time, and
    // blind to length) and the operator lookup.
    const digest = sha256(credential);
    if (this.bootstrapDigest && timingSafeEqual(digest, this.bootstrapDigest)) {
      return { caller: { kind: 'bootstrap' }, key: null };
    }
    if (credential.startsWith('kw_')) {
      // The same decision as POST /v1/verify, without scope, resource or rate checks.
      const record = await this.verifier.authenticate(credential, sourceIp);
      if (record) {
        return {
          caller: {
            kind: 'service-account',
            id: record.account.id,
            keyId: record.key.id,
            tenantId: record.key.tenantId,
            name: record.account.name,
            scopes: record.key.scopes.filter((s) => s.startsWith('keyward:')),
          },
          key: record,
        };
      }
    }
    if (isOperatorTokenForm(credential)) {
      const hash = digest.toString('hex');
      const operator = await this.operatorCache.get(
        hash,
        async () => (await this.operators.byTokenHash(hash)) ?? null,
      );
      if (operator) {
        return {
          caller: {
            kind: 'operator',
            id: operator.id,
            tenantId: operator.tenant_id,
            name: operator.name,
            role: operator.role as Role,
          },
          key: null,
        };
      }
    }
    return null;
  }
}
