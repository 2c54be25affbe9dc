import { cidrWithin, withinBoundaries } from '@keyward/keys';
import type { ServiceAccount } from './service-account';
import type { ServiceAccountChanges } from './service-account.events';

/**
 * An account's ceiling is how far its keys may ever reach: its `allowedScopes`, and the
 * `boundaries` and `allowedCidrs` they are held to. Scopes widen only by a grant; these tell
 * whether a change to the other two widens them (admits a resource or an address the account's
 * keys could not reach before) or only narrows them.
 */

/** An empty list admits every resource, so nothing widens it; a non-empty one widens by any boundary outside it. */
export function boundariesWiden(current: readonly string[], next: readonly string[]): boolean {
  if (!current.length) return false;
  return !next.length || next.some((b) => !withinBoundaries(current, b));
}

/** The same for addresses: every new CIDR must lie inside one the account had. */
export function cidrsWiden(current: readonly string[], next: readonly string[]): boolean {
  if (!current.length) return false;
  return !next.length || next.some((cidr) => !current.some((outer) => cidrWithin(cidr, outer)));
}

/** The fields of a change that widen the account's ceiling. */
export function ceilingWidenings(
  state: Pick<ServiceAccount, 'boundaries' | 'allowedCidrs'>,
  changes: Pick<ServiceAccountChanges, 'boundaries' | 'allowedCidrs'>,
): ('boundaries' | 'allowedCidrs')[] {
  const widened: ('boundaries' | 'allowedCidrs')[] = [];
  if (changes.boundaries && boundariesWiden(state.boundaries, changes.boundaries)) widened.push('boundaries');
  if (changes.allowedCidrs && cidrsWiden(state.allowedCidrs, changes.allowedCidrs))
    widened.push('allowedCidrs');
  return widened;
}
