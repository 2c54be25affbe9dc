import { BlockList, isIP } from 'node:net';
import { Forbidden, type FieldError } from '@keyward/core';
import type { KeyEnvironment, KeyIssuedV1 } from './key.events';
import { scopesCover, withinBoundaries } from './matching';

/**
 * What a service-account key may hand on when it makes an account or a key (issue, rotate,
 * create): never more than it holds itself. A key that could make a credential reaching further
 * than its own, or as far (a governance scope), could escalate without a second person: a staging
 * key making production keys, a `keyward:admin` key minting more admin keys that outlive its own
 * revocation, a key without `payments:write` issuing itself one through another account.
 */

/** How far a credential reaches, or would reach once made. */
export interface Reach {
  environment: KeyEnvironment;
  scopes: readonly string[];
  /** Resources it may act on, resolved (a key without its own has its account's); empty: any. */
  boundaries: readonly string[];
  /** Address lists that must each admit the source (the account's, the key's); an empty list admits any. */
  cidrs: readonly (readonly string[])[];
  /** When it stops working; null for an account, which never stops on its own. */
  endsAt: Date | null;
}

/** Scopes over Keyward itself: only a person gives them (API.md "Callers and credentials"). */
export function isGovernanceScope(scope: string): boolean {
  return scope.startsWith('keyward:');
}

/** A key as far as its reach goes: one that exists (with its grace, if rotating) or one being issued. */
export type KeyReachFields = Pick<
  KeyIssuedV1,
  'environment' | 'scopes' | 'boundaries' | 'allowedCidrs' | 'expiresAt'
> & { graceEndsAt?: string | null };

/** The reach of a key of an account with these boundaries and addresses. */
export function reachOfKey(
  key: KeyReachFields,
  account: { boundaries: readonly string[]; allowedCidrs: readonly string[] },
): Reach {
  const ends = [key.expiresAt, key.graceEndsAt ?? null].filter((t): t is string => t !== null);
  return {
    environment: key.environment,
    scopes: key.scopes,
    boundaries: key.boundaries.length ? key.boundaries : account.boundaries,
    cidrs: [account.allowedCidrs, key.allowedCidrs],
    endsAt: new Date(Math.min(...ends.map(Date.parse))),
  };
}

/** Every way `wanted` reaches beyond `holder`, one entry per field; empty when it lies within. */
export function reachBeyond(holder: Reach, wanted: Reach): FieldError[] {
  const errors: FieldError[] = [];
  if (wanted.environment !== holder.environment) {
    errors.push({
      field: 'environment',
      message: `is ${wanted.environment}, where the key itself is ${holder.environment}`,
    });
  }
  const governance = wanted.scopes.filter(isGovernanceScope);
  if (governance.length) {
    errors.push({
      field: 'scopes',
      message: `${governance.join(', ')}: a keyward scope is given only by a person`,
    });
  }
  const own = holder.scopes.filter((s) => !isGovernanceScope(s));
  const uncovered = wanted.scopes.filter((s) => !isGovernanceScope(s) && !scopesCover(own, s));
  if (uncovered.length) {
    errors.push({ field: 'scopes', message: `${uncovered.join(', ')}: not among the key's own scopes` });
  }
  if (holder.boundaries.length) {
    const outside = wanted.boundaries.filter((b) => !withinBoundaries(holder.boundaries, b));
    if (!wanted.boundaries.length || outside.length) {
      errors.push({
        field: 'boundaries',
        message: wanted.boundaries.length
          ? `${outside.join(', ')}: outside the key's own boundaries`
          : `unbounded, where the key itself is bounded to ${holder.boundaries.join(', ')}`,
      });
    }
  }
  for (const list of holder.cidrs.filter((l) => l.length)) {
    const narrower = wanted.cidrs.some((w) => w.length && w.every((cidr) => cidrWithinAny(cidr, list)));
    if (!narrower) {
      errors.push({
        field: 'allowedCidrs',
        message: `admits addresses the key itself may not come from (it is held to ${list.join(', ')})`,
      });
    }
  }
  if (holder.endsAt && wanted.endsAt && wanted.endsAt > holder.endsAt) {
    errors.push({
      field: 'expiresInDays',
      message: `would work until ${wanted.endsAt.toISOString()}, after the key making it stops (${holder.endsAt.toISOString()})`,
    });
  }
  return errors;
}

/** Refuses (403) to make `what` when it would reach beyond the key making it; says how. */
export function assertWithinReach(holder: Reach, wanted: Reach, what: string): void {
  const errors = reachBeyond(holder, wanted);
  if (!errors.length) return;
  throw new Forbidden(
    `a service-account key may make ${what} only within its own reach: ${errors
      .map((e) => `${e.field} ${e.message}`)
      .join('; ')}. An operator can do it`,
  );
}

/**
 * `inner` lies inside `outer` when its prefix is at least as long and its network address lies in
 * `outer`: every address of `inner` shares those first bits. Different families never nest here,
 * though an IPv4-mapped range could: refusing is the safe side.
 */
export function cidrWithin(inner: string, outer: string): boolean {
  const [innerNet, innerBits] = inner.split('/');
  const [outerNet, outerBits] = outer.split('/');
  const family = isIP(innerNet);
  if (family === 0 || family !== isIP(outerNet) || Number(innerBits) < Number(outerBits)) return false;
  const type = family === 6 ? 'ipv6' : 'ipv4';
  const list = new BlockList();
  list.addSubnet(outerNet, Number(outerBits), type);
  return list.check(innerNet, type);
}

function cidrWithinAny(inner: string, outers: readonly string[]): boolean {
  return outers.some((outer) => cidrWithin(inner, outer));
}
