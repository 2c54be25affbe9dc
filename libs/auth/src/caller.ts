import type { Actor } from '@keyward/event-store';
import type { Permission, Role } from './roles';
import { ROLE_SCOPES, scopesAllow } from './roles';

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
 * scheduled job) acts with full rights in the tenant it names.
 */
export function callerAllows(caller: Caller, permission: Permission): boolean {
  switch (caller.kind) {
    case 'bootstrap':
      return false;
    case 'operator':
      return scopesAllow(ROLE_SCOPES[caller.role], permission);
    case 'system':
      return true;
    case 'service-account':
      return scopesAllow(caller.scopes, permission);
  }
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
