import { isIP } from 'node:net';

/**
 * Form rules for account fields, shared by the DTO validators (400 at the edge) and the
 * aggregate (which never trusts its caller). Each returns an error message or null.
 */
export const ENVIRONMENTS = ['production', 'staging', 'development'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const ACCOUNT_NAME = /^[a-z0-9-]{3,64}$/;
/** `product:action` of [a-z0-9._-], or `product:*`. */
export const SCOPE = /^[a-z0-9._-]{1,64}:(?:[a-z0-9._-]{1,64}|\*)$/;
/** Whole path segments `type:value` joined by `/`, as in `site:plant-7/asset-group:pumps`. */
export const BOUNDARY = /^[a-z0-9._-]{1,64}:[A-Za-z0-9._~-]{1,128}(?:\/[a-z0-9._-]{1,64}:[A-Za-z0-9._~-]{1,128})*$/;

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
  if (boundary.length > LIMITS.boundaryLength) return `a boundary is at most ${LIMITS.boundaryLength} characters`;
  return BOUNDARY.test(boundary) ? null : `"${boundary}" is not a boundary of the form type:value[/type:value...]`;
}

/** An IPv4 or IPv6 network in CIDR form whose address has no bits set beyond its prefix. */
export function cidrError(cidr: string): string | null {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  const family = match ? isIP(match[1]) : 0;
  if (!match || family === 0) return `"${cidr}" is not an IPv4 or IPv6 CIDR such as 10.20.0.0/16`;
  const bits = Number(match[2]);
  if (bits > (family === 4 ? 32 : 128)) return `"${cidr}" has a prefix longer than the address`;
  return null;
}

/** Sorted and without duplicates, so equal sets compare equal and events carry one spelling. */
export function normalizedSet(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}
