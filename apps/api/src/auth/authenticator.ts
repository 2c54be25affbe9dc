import { Inject, Injectable } from '@nestjs/common';
import { Unauthenticated } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { isOperatorTokenForm, secretsEqual, sha256Hex, type Caller, type Role } from '@keyward/auth';
import { Verifier, type KeyRecord } from '@keyward/keys';
import { OperatorReader } from '@keyward/tenants';
import { OperatorCache } from './operator-cache';

/** A caller, and for a service-account key the record it was authenticated with. */
export interface Authenticated {
  caller: Caller;
  key: KeyRecord | null;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/**
 * Who a `Bearer <credential>` header is: the bootstrap token, an operator (from the operator
 * cache when warm, so a busy verifier costs no PostgreSQL read) or a service-account key. Shared
 * by the auth guard (the Authorization header) and the gateway check (its X-Keyward-Verifier).
 * Throws Unauthenticated for a missing, malformed, unknown or deleted credential.
 */
@Injectable()
export class Authenticator {
  constructor(
    @Inject(CONFIG) private readonly config: KeywardConfig,
    @Inject(OperatorReader) private readonly operators: OperatorReader,
    @Inject(OperatorCache) private readonly operatorCache: OperatorCache,
    @Inject(Verifier) private readonly verifier: Verifier,
  ) {}

  async authenticate(header: string | undefined, sourceIp: string | null): Promise<Authenticated> {
    const match = header ? BEARER.exec(header) : null;
    if (!match) throw new Unauthenticated('send Authorization: Bearer <credential>');
    const credential = match[1];
    if (this.config.bootstrapToken !== undefined && secretsEqual(credential, this.config.bootstrapToken)) {
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
      const hash = sha256Hex(credential);
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
    throw new Unauthenticated('the credential is not valid');
  }
}
