import { canonicalJson } from '@keyward/core';

/** A tenant's policy (API.md "Tenant policy"); these are its defaults until a tenant changes them. */
export interface TenantPolicy {
  maxKeyLifetimeDays: { production: number; staging: number; development: number };
  maxActiveKeys: number;
  highRiskActions: string[];
  unusedAfterDays: number;
  revokeUnusedAfterDays: number | null;
  exposureAction: 'revoke' | 'flag';
}

export const DEFAULT_POLICY: TenantPolicy = {
  maxKeyLifetimeDays: { production: 90, staging: 180, development: 365 },
  maxActiveKeys: 10,
  highRiskActions: ['write', 'approve', 'admin', 'delete', '*'],
  unusedAfterDays: 90,
  revokeUnusedAfterDays: null,
  exposureAction: 'revoke',
};

export const POLICY_STREAM = 'tenant-policy';

export function policyStreamId(tenantId: string): string {
  return `policy-${tenantId}`;
}

export type PolicyChanges = Partial<TenantPolicy>;
export type PolicyEvent = { type: 'TenantPolicyChanged'; data: { changes: PolicyChanges } };

/** The tenant's own settings (only what it changed; the defaults fill the rest when read). */
export function evolvePolicy(state: Record<string, unknown>, event: PolicyEvent): Record<string, unknown> {
  return { ...state, ...event.data.changes };
}

/** Records only what differs from the policy in force; no change, no event. */
export function decidePolicyChange(current: TenantPolicy, changes: PolicyChanges): PolicyEvent[] {
  const effective: PolicyChanges = {};
  for (const [field, value] of Object.entries(changes) as [keyof TenantPolicy, unknown][]) {
    if (value !== undefined && canonicalJson(value) !== canonicalJson(current[field])) {
      Object.assign(effective, { [field]: value });
    }
  }
  return Object.keys(effective).length ? [{ type: 'TenantPolicyChanged', data: { changes: effective } }] : [];
}
