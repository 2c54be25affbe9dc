import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Forbidden, Unauthenticated } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import {
  callerAllows,
  isOperatorTokenForm,
  secretsEqual,
  sha256Hex,
  type Caller,
  type Role,
} from '@keyward/auth';
import { Verifier } from '@keyward/keys';
import { OperatorReader } from '@keyward/tenants';
import type { KeywardRequest } from '../http/request-context';
import { ACCESS, type AccessRule } from './access.decorator';

/**
 * Authenticates every request (401 for a missing, malformed, unknown or deleted credential) and
 * then checks the route's access rule (403). Runs for every route: there is no opt-out but @Public.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(CONFIG) private readonly config: KeywardConfig,
    @Inject(OperatorReader) private readonly operators: OperatorReader,
    @Inject(Verifier) private readonly verifier: Verifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const rule = this.reflector.getAllAndOverride<AccessRule | undefined>(ACCESS, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (rule?.public) return true;
    const req = context.switchToHttp().getRequest<KeywardRequest>();
    const caller = await this.authenticate(req.headers.authorization, req.ip ?? null);
    req.caller = caller;
    if (!rule) throw new Forbidden('this route admits no caller');
    const allowed =
      caller.kind === 'bootstrap'
        ? rule.bootstrap === true
        : rule.permission !== undefined && callerAllows(caller, rule.permission);
    if (!allowed)
      throw new Forbidden(
        caller.kind === 'bootstrap'
          ? 'the bootstrap token may only manage tenants and operators'
          : 'your role does not allow this',
      );
    return true;
  }

  private async authenticate(header: string | undefined, sourceIp: string | null): Promise<Caller> {
    const match = header ? /^Bearer ([\x21-\x7e]{1,512})$/.exec(header) : null;
    if (!match) throw new Unauthenticated('send Authorization: Bearer <credential>');
    const credential = match[1];
    if (this.config.bootstrapToken !== undefined && secretsEqual(credential, this.config.bootstrapToken)) {
      return { kind: 'bootstrap' };
    }
    if (credential.startsWith('kw_')) {
      // The same decision as POST /v1/verify, without scope, resource or rate checks.
      const record = await this.verifier.authenticate(credential, sourceIp);
      if (record) {
        return {
          kind: 'service-account',
          id: record.account.id,
          keyId: record.key.id,
          tenantId: record.key.tenantId,
          name: record.account.name,
          scopes: record.key.scopes.filter((s) => s.startsWith('keyward:')),
        };
      }
    }
    if (isOperatorTokenForm(credential)) {
      const operator = await this.operators.byTokenHash(sha256Hex(credential));
      if (operator) {
        return {
          kind: 'operator',
          id: operator.id,
          tenantId: operator.tenant_id,
          name: operator.name,
          role: operator.role as Role,
        };
      }
    }
    throw new Unauthenticated('the credential is not valid');
  }
}
