import { BlockList, isIP } from 'node:net';

/**
 * How scopes, resources and addresses are matched, shared by the issue-time policy checks and
 * the verify decision so both read a scope or a boundary the same way.
 */

/** `tickets:*` covers `tickets:read`; anything covers itself. */
export function scopeCovers(granted: string, wanted: string): boolean {
  if (granted === wanted) return true;
  if (!granted.endsWith(':*')) return false;
  return wanted.startsWith(granted.slice(0, -1));
}

export function scopesCover(granted: readonly string[], wanted: string): boolean {
  return granted.some((g) => scopeCovers(g, wanted));
}

/*
 * A canonical resource is the one spelling of a resource: segments `type:value` joined by single
 * `/`, where type is 1..64 of [a-z0-9._-] and value 1..128 of [A-Za-z0-9._~-], and neither is
 * made of dots only. Boundaries are written the same way (they name the resource they cover).
 *
 * Matching by whole segments is sound only on that one spelling, because whoever acts on the
 * resource downstream may normalise it first. So everything a path or URL normaliser rewrites is
 * outside the grammar: empty segments (`//`, a leading or trailing `/`), `.` and `..` (no colon),
 * a type or value of dots only (`..:x` names the stream x of `..` on NTFS; a consumer splitting at
 * the colon would see `..`), percent-encoding (`%2e%2e`, `%2f`), backslashes, whitespace and
 * control characters, and any non-ASCII character (fullwidth `．．`, `∕`, look-alike letters
 * that NFKC or a confusable mapping would fold).
 */
const TYPE = String.raw`(?!\.+:)[a-z0-9._-]{1,64}`;
const VALUE = String.raw`(?!\.+(?:\/|$))[A-Za-z0-9._~-]{1,128}`;
const SEGMENT = `${TYPE}:${VALUE}`;
export const CANONICAL_RESOURCE = new RegExp(`^${SEGMENT}(?:/${SEGMENT})*$`);
/** The longest resource verify reads (VerifyDto's bound, for callers that skip the DTO). */
export const RESOURCE_MAX_LENGTH = 2048;

export function isCanonicalResource(resource: string): boolean {
  return resource.length <= RESOURCE_MAX_LENGTH && CANONICAL_RESOURCE.test(resource);
}

/**
 * Whole path segments: `site:plant-7` covers `site:plant-7/asset:1`, not `site:plant-70`. A
 * resource that is not canonical is inside no boundary; since the boundary is a whole-segment
 * prefix of a canonical resource, only a canonical boundary can cover anything.
 */
export function boundaryCovers(boundary: string, resource: string): boolean {
  if (!isCanonicalResource(resource)) return false;
  return resource === boundary || resource.startsWith(`${boundary}/`);
}

/**
 * No boundaries means unbounded: any resource, canonical or not, since an unbounded key may
 * reach every resource whatever it is called and its form is not the decision's to police.
 */
export function withinBoundaries(boundaries: readonly string[], resource: string): boolean {
  if (boundaries.length === 0) return true;
  if (!isCanonicalResource(resource)) return false;
  return boundaries.some((b) => resource === b || resource.startsWith(`${b}/`));
}

/**
 * A single IPv4 or IPv6 address in text form, as a socket or a proxy header reports it: IPv4 as
 * four decimal octets without leading zeros (`10.0.0.1`, not `010.0.0.1`, `10.1` or
 * `0x0a.0.0.1`), IPv6 per RFC 4291 §2.2 (`::ffff:10.0.0.1` included). No surrounding space, no
 * brackets, port, prefix length (`/32`) or zone (`%eth0`). For the source ip of a verification,
 * whether it comes from a body or from X-Forwarded-For / X-Real-IP.
 */
export function isIpAddress(text: string): boolean {
  return isIP(text) !== 0 && !text.includes('%');
}

/** An address range in CIDR form, as `parseCidr` reads it. */
export interface Cidr {
  network: string;
  bits: number;
  family: 4 | 6;
}

/**
 * `10.20.0.0/16` or `2001:db8::/32`: an address (isIpAddress) and a decimal prefix length without
 * leading zeros, at most 32 for IPv4 and 128 for IPv6; null for anything else (`/33`, `/08`,
 * `10.0.0.0`, `10.0.0.0/8/8`). Host bits beyond the prefix are the caller's to judge.
 */
export function parseCidr(text: string): Cidr | null {
  const match = /^([^/]+)\/(0|[1-9]\d{0,2})$/.exec(text);
  if (!match || !isIpAddress(match[1])) return null;
  const family = isIP(match[1]) as 4 | 6;
  const bits = Number(match[2]);
  if (bits > (family === 4 ? 32 : 128)) return null;
  return { network: match[1], bits, family };
}

/** IPv4 addresses written as IPv6 (`::ffff:10.20.1.7`), as dual-stack sockets report them. */
const IPV4_MAPPED = new BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/**
 * True when `ip` lies in one of the CIDRs; an empty list allows every address and a missing one.
 * Something that is not an address (see isIpAddress) is never allowed, with or without a list,
 * and a CIDR that does not parse admits nothing.
 */
export function ipAllowed(cidrs: readonly string[], ip: string | undefined): boolean {
  if (ip === undefined) return cidrs.length === 0;
  if (!isIpAddress(ip)) return false;
  if (cidrs.length === 0) return true;
  const family = isIP(ip);
  // BlockList reads an IPv4 address as ::ffff:a.b.c.d, so `::/0` (any IPv6 range up to /80) would
  // admit every IPv4 address: an IPv4 address, however written, meets IPv4 ranges only.
  const ipv4 = family === 4 || IPV4_MAPPED.check(ip, 'ipv6');
  const list = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (!cidr || (ipv4 && cidr.family === 6)) continue;
    list.addSubnet(cidr.network, cidr.bits, cidr.family === 6 ? 'ipv6' : 'ipv4');
  }
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}
