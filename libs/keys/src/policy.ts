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
