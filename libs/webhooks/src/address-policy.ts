import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { PolicyViolation, ValidationFailed } from '@keyward/core';

/**
 * Where a webhook may not point: loopback, private, link-local, unspecified, shared (CGNAT),
 * multicast and reserved ranges, IPv4 and IPv6. A receiver there would let a tenant make Keyward
 * call into its own network (SSRF). IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) are checked
 * against the IPv4 rules by BlockList itself.
 */
const FORBIDDEN = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv6');
}

/** True when an address (IPv4 or IPv6 text) lies in a range a webhook may not reach. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return FORBIDDEN.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Every address a host name resolves to; injected in tests, node:dns otherwise. */
export type Resolve = (hostname: string) => Promise<ResolvedAddress[]>;

export const resolveWithDns: Resolve = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** A webhook URL's form: http or https, a host, no credentials (they would be stored in an event). */
export function parseWebhookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidUrl('must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidUrl('must use http or https');
  if (!url.hostname) throw invalidUrl('must name a host');
  if (url.username || url.password) throw invalidUrl('must not carry a user name or password');
  if (url.hash) throw invalidUrl('must not carry a fragment');
  return url;
}

function invalidUrl(message: string): ValidationFailed {
  return new ValidationFailed(`url ${message}`, [{ field: 'url', message }]);
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * The addresses a host resolves to, refused (422 POLICY_VIOLATION) when any is forbidden: an
 * attacker's name may answer one public and one private address. An IP literal is not looked up.
 */
export async function checkedAddresses(
  hostname: string,
  resolve: Resolve = resolveWithDns,
): Promise<ResolvedAddress[]> {
  const family = isIP(hostname);
  let addresses: ResolvedAddress[];
  if (family !== 0) {
    addresses = [{ address: hostname, family }];
  } else {
    try {
      addresses = await resolve(hostname);
    } catch {
      throw new PolicyViolation(`the webhook host ${hostname} does not resolve`, 'url');
    }
    if (addresses.length === 0) {
      throw new PolicyViolation(`the webhook host ${hostname} does not resolve`, 'url');
    }
  }
  const forbidden = addresses.find((a) => isForbiddenAddress(a.address));
  if (forbidden) {
    throw new PolicyViolation(
      `the webhook host ${hostname} is a loopback, private, link-local or reserved address (${forbidden.address})`,
      'url',
    );
  }
  return addresses;
}

/**
 * At registration: the URL's form (400) and, unless private addresses are allowed, where its host
 * points now (422). Delivery checks again at connect time (see delivery.ts): DNS may change.
 */
export async function checkWebhookUrl(
  text: string,
  options: { allowPrivate: boolean; resolve?: Resolve },
): Promise<URL> {
  const url = parseWebhookUrl(text);
  if (!options.allowPrivate) await checkedAddresses(hostOf(url), options.resolve);
  return url;
}
