import { Forbidden } from '@keyward/core';
import type { Actor } from '@keyward/event-store';
import type { Permission, Role } from './roles';
import {
  NOT_FOR_SERVICE_ACCOUNTS,
  PERMISSION_DOES,
  PERMISSION_SCOPE,
  ROLE_SCOPES,
  scopesAllow,
} from './roles';

/** Who is calling, as the auth guard established it. */
export type Caller =
  | { kind: 'bootstrap' }
  | { kind: 'operator'; id: string; tenantId: string; name: string; role: Role }
  | { kind: 'system'; id: string; name: string; tenantId: string | null }
  /** Automation calling Keyward itself with a key that carries `keyward:*` scopes. */
  | { kind: 'service-account'; id: string; keyId: string; tenantId: string; name: string; scopes: string[] };

export type TenantCaller = Extract<Caller, { tenantId: string }>;

/**
 * The bootstrap token may only manage tenants and operators; a system caller (the CLI, a
 * scheduled job) acts with full rights in the tenant it names; a service-account key holds what
 * its `keyward:*` scopes allow, except what only a person may do (`NOT_FOR_SERVICE_ACCOUNTS`).
 */
export function callerAllows(caller: Caller, permission: Permission): boolean {
  switch (caller.kind) {
    case 'bootstrap':
      return permission === 'manage-operators';
    case 'operator':
      return scopesAllow(ROLE_SCOPES[caller.role], permission);
    case 'system':
      return true;
    case 'service-account':
      return !NOT_FOR_SERVICE_ACCOUNTS.includes(permission) && scopesAllow(caller.scopes, permission);
  }
}

/**
 * The same rule where a command decides, so it holds on every path (HTTP, worker, CLI), not only
 * behind the route's access rule. The refusal names what was needed.
 */
export function requirePermission(caller: Caller, permission: Permission): void {
  if (callerAllows(caller, permission)) return;
  const what = PERMISSION_DOES[permission];
  if (caller.kind === 'service-account' && NOT_FOR_SERVICE_ACCOUNTS.includes(permission)) {
    throw new Forbidden(
      `${what} needs the ${permission} permission, which no service-account key holds whatever its scopes: an admin operator must do it`,
    );
  }
  throw new Forbidden(
    caller.kind === 'bootstrap'
      ? `${what} needs the ${permission} permission; the bootstrap token may only manage tenants and operators`
      : `${what} needs the ${permission} permission (scope ${PERMISSION_SCOPE[permission]})`,
  );
}

export function actorOf(caller: Caller): Actor {
  switch (caller.kind) {
    case 'bootstrap':
      return { type: 'bootstrap', id: 'bootstrap', name: 'bootstrap token' };
    case 'operator':
      return { type: 'operator', id: caller.id, name: caller.name };
    case 'system':
      return { type: 'system', id: caller.id, name: caller.name };
    case 'service-account':
      return { type: 'service-account', id: caller.id, name: `${caller.name} (key ${caller.keyId})` };
  }
}
