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

/** True when `ip` lies in one of the CIDRs; an empty list allows every address. */
export function ipAllowed(cidrs: readonly string[], ip: string | undefined): boolean {
  if (cidrs.length === 0) return true;
  if (ip === undefined) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network, bits] = cidr.split('/');
    const cidrFamily = isIP(network);
    list.addSubnet(network, Number(bits), cidrFamily === 6 ? 'ipv6' : 'ipv4');
  }
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}
