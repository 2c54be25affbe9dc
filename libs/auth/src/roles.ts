/** Operator roles and the governance scopes each equals (API.md "Callers and credentials"). */
export const ROLES = ['admin', 'approver', 'auditor', 'verifier'] as const;
export type Role = (typeof ROLES)[number];

export const GOVERNANCE_SCOPES = [
  'keyward:admin',
  'keyward:approve',
  'keyward:read',
  'keyward:audit',
  'keyward:verify',
] as const;
export type GovernanceScope = (typeof GOVERNANCE_SCOPES)[number];

export const ROLE_SCOPES: Record<Role, readonly GovernanceScope[]> = {
  admin: ['keyward:admin'],
  approver: ['keyward:approve', 'keyward:read'],
  auditor: ['keyward:read', 'keyward:audit'],
  verifier: ['keyward:verify'],
};

/**
 * What an endpoint or a command needs. `keyward:admin` allows everything in its tenant; the other
 * scopes allow exactly their own permission. The finer admin permissions (operators, ceilings,
 * secret delivery, policy) need `keyward:admin` too, and are what `NOT_FOR_SERVICE_ACCOUNTS`
 * keeps from keys.
 */
export type Permission =
  | 'manage'
  | 'read'
  | 'audit'
  | 'approve'
  | 'verify'
  | 'manage-operators'
  | 'widen-ceiling'
  | 'set-secret-delivery'
  | 'change-policy';

export const PERMISSION_SCOPE: Record<Permission, GovernanceScope> = {
  manage: 'keyward:admin',
  read: 'keyward:read',
  audit: 'keyward:audit',
  approve: 'keyward:approve',
  verify: 'keyward:verify',
  'manage-operators': 'keyward:admin',
  'widen-ceiling': 'keyward:admin',
  'set-secret-delivery': 'keyward:admin',
  'change-policy': 'keyward:admin',
};

/**
 * What a service-account key never holds, whatever its scopes: each is a decision a person makes
 * (who the people are, how far an account may reach, where new secrets go, the rules the tenant
 * runs by, a second person's approval). A key that could do any of them could give some key more
 * than it holds itself, its own included, without anyone else seeing it happen.
 */
export const NOT_FOR_SERVICE_ACCOUNTS: readonly Permission[] = [
  'manage-operators',
  'widen-ceiling',
  'set-secret-delivery',
  'change-policy',
  'approve',
];

/** What each permission lets a caller do, for refusals that name what was needed. */
export const PERMISSION_DOES: Record<Permission, string> = {
  manage: 'changing service accounts, keys and webhooks',
  read: 'reading service accounts and keys',
  audit: 'reading history and events',
  approve: 'approving or rejecting a request',
  verify: 'verifying keys',
  'manage-operators': 'creating or deleting operators',
  'widen-ceiling': "widening an account's ceiling (allowedScopes, boundaries, allowedCidrs)",
  'set-secret-delivery': "setting where an account's new keys are delivered (secretDelivery)",
  'change-policy': 'changing the tenant policy',
};

export function scopesAllow(scopes: readonly string[], permission: Permission): boolean {
  return (
    scopes.includes('keyward:admin') ||
    scopes.includes('keyward:*') ||
    scopes.includes(PERMISSION_SCOPE[permission])
  );
}
