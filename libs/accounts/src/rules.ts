import { CANONICAL_RESOURCE, isIpAddress, parseCidr } from '@keyward/keys';
import { ipAddressBytes } from '@keyward/core';

/**
 * Form rules for account fields, shared by the DTO validators (400 at the edge) and the
 * aggregate (which never trusts its caller). Each returns an error message or null.
 */
export const ENVIRONMENTS = ['production', 'staging', 'development'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const ACCOUNT_NAME = /^[a-z0-9-]{3,64}$/;
/** `product:action` of [a-z0-9._-], or `product:*`. */
export const SCOPE = /^[a-z0-9._-]{1,64}:(?:[a-z0-9._-]{1,64}|\*)$/;
/**
 * Whole path segments `type:value` joined by `/`, as in `site:plant-7/asset-group:pumps`: a
 * boundary is written as the canonical resource it covers (libs/keys matching.ts), so verify
 * compares resources and boundaries of one spelling.
 */
export const BOUNDARY = CANONICAL_RESOURCE;

export const LIMITS = {
  scopes: 100,
  boundaries: 50,
  cidrs: 50,
  boundaryLength: 512,
  text: 1000,
  owner: 128,
  maxKeyAgeDays: 3650,
} as const;

export function scopeError(scope: string): string | null {
  return SCOPE.test(scope) ? null : `"${scope}" is not a scope of the form product:action or product:*`;
}

export function boundaryError(boundary: string): string | null {
  if (boundary.length > LIMITS.boundaryLength)
    return `a boundary is at most ${LIMITS.boundaryLength} characters`;
  return BOUNDARY.test(boundary)
    ? null
    : `"${boundary}" is not a boundary of the form type:value[/type:value...]`;
}

/** An IPv4 or IPv6 network in CIDR form whose address has no bits set beyond its prefix. */
export function cidrError(cidr: string): string | null {
  const parsed = parseCidr(cidr);
  if (!parsed) {
    const [address, prefix, ...rest] = cidr.split('/');
    const tooLong = !rest.length && isIpAddress(address) && /^[1-9]\d{0,2}$/.test(prefix ?? '');
    return tooLong
      ? `"${cidr}" has a prefix longer than the address`
      : `"${cidr}" is not an IPv4 or IPv6 CIDR such as 10.20.0.0/16`;
  }
  const { network, bits } = parsed;
  const bytes = ipAddressBytes(network);
  if (!bytes) return `"${cidr}" is not an IPv4 or IPv6 CIDR such as 10.20.0.0/16`;
  const hostBitsSet = bytes.some(
    (byte, i) => (byte & (0xff >> Math.min(8, Math.max(0, bits - 8 * i)))) !== 0,
  );
  if (hostBitsSet) return `"${cidr}" has address bits set beyond its /${bits} prefix`;
  return null;
}

/** Sorted and without duplicates, so equal sets compare equal and events carry one spelling. */
export function normalizedSet(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}
