import type { ServiceAccount } from './service-account';

export interface GrantRoute {
  /** Scopes that take effect now. */
  apply: string[];
  /** Scopes that wait for a second person's approval (202 with an approval request). */
  needsApproval: string[];
}

/**
 * The one place that decides whether widening an account's ceiling applies now or waits for
 * approval, for grants at creation and later alike. Approval gates (API.md "Approval gates")
 * are not built yet, so every grant applies directly; they will route production high-risk
 * scopes to `needsApproval` here and nowhere else.
 */
export function routeGrant(
  _account: Pick<ServiceAccount, 'environment' | 'tenantId'>,
  scopes: string[],
): GrantRoute {
  return { apply: scopes, needsApproval: [] };
}
