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
 * What an endpoint needs. `keyward:admin` allows everything in its tenant; the other scopes
 * allow exactly their own permission.
 */
export type Permission = 'manage' | 'read' | 'audit' | 'approve' | 'verify';

const PERMISSION_SCOPE: Record<Permission, GovernanceScope> = {
  manage: 'keyward:admin',
  read: 'keyward:read',
  audit: 'keyward:audit',
  approve: 'keyward:approve',
  verify: 'keyward:verify',
};

export function scopesAllow(scopes: readonly string[], permission: Permission): boolean {
  return (
    scopes.includes('keyward:admin') ||
    scopes.includes('keyward:*') ||
    scopes.includes(PERMISSION_SCOPE[permission])
  );
}
