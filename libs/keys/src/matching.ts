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

/** Whole path segments: `site:plant-7` covers `site:plant-7/asset:1`, not `site:plant-70`. */
export function boundaryCovers(boundary: string, resource: string): boolean {
  return resource === boundary || resource.startsWith(`${boundary}/`);
}

/** No boundaries means unbounded. */
export function withinBoundaries(boundaries: readonly string[], resource: string): boolean {
  return boundaries.length === 0 || boundaries.some((b) => boundaryCovers(b, resource));
}

/** IPv4 addresses written as IPv6 (`::ffff:10.20.1.7`), as dual-stack sockets report them. */
const IPV4_MAPPED = new BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** True when `ip` lies in one of the CIDRs; an empty list allows every address. */
export function ipAllowed(cidrs: readonly string[], ip: string | undefined): boolean {
  if (cidrs.length === 0) return true;
  if (ip === undefined) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  // BlockList reads an IPv4 address as ::ffff:a.b.c.d, so `::/0` (any IPv6 range up to /80) would
  // admit every IPv4 address: an IPv4 address, however written, meets IPv4 ranges only.
  const ipv4 = family === 4 || IPV4_MAPPED.check(ip, 'ipv6');
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network, bits] = cidr.split('/');
    const cidrFamily = isIP(network);
    if (ipv4 && cidrFamily === 6) continue;
    list.addSubnet(network, Number(bits), cidrFamily === 6 ? 'ipv6' : 'ipv4');
  }
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}
