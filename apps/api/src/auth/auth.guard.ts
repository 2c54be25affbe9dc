import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Forbidden } from '@keyward/core';
import { callerAllows, type Caller } from '@keyward/auth';
import { Verifier } from '@keyward/keys';
import type { KeywardRequest } from '../http/request-context';
import { ACCESS, type AccessRule } from './access.decorator';
import { Authenticator } from './authenticator';

/**
 * Authenticates every request (401 for a missing, malformed, unknown or deleted credential) and
 * then checks the route's access rule (403). Runs for every route: there is no opt-out but @Public.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(Authenticator) private readonly authenticator: Authenticator,
    @Inject(Verifier) private readonly verifier: Verifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const rule = this.reflector.getAllAndOverride<AccessRule | undefined>(ACCESS, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (rule?.public) return true;
    const req = context.switchToHttp().getRequest<KeywardRequest>();
    const sourceIp = req.ip ?? null;
    const { caller, key } = await this.authenticator.authenticate(req.headers.authorization, sourceIp);
    req.caller = caller;
    const allowed = allows(caller, rule);
    // A key is counted as what its use came to: refused for its scopes is not an allowed use.
    if (key) this.verifier.countApiUse(key, allowed ? 'ALLOWED' : 'INSUFFICIENT_SCOPE', sourceIp);
    if (!allowed) throw new Forbidden(refusal(caller, rule));
    return true;
  }
}

export function allows(caller: Caller, rule: AccessRule | undefined): boolean {
  if (!rule) return false;
  return caller.kind === 'bootstrap'
    ? rule.bootstrap === true
    : rule.permission !== undefined && callerAllows(caller, rule.permission);
}

function refusal(caller: Caller, rule: AccessRule | undefined): string {
  if (!rule) return 'this route admits no caller';
  if (caller.kind === 'bootstrap') return 'the bootstrap token may only manage tenants and operators';
  return 'your role does not allow this';
}
