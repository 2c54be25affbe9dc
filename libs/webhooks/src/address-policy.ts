import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { PolicyViolation, ValidationFailed } from '@keyward/core';

/**
 * Where a webhook or a secret delivery may not point. A receiver at a non-public address would
 * let a tenant make Keyward call into its own network (SSRF), so every range of the IANA IPv4 and
 * IPv6 Special-Purpose Address Registries is refused, with multicast, the deprecated site-local
 * range and, for IPv6, everything outside global unicast 2000::/3 (the IANA IPv6 Address Space
 * registry: the rest is reserved or unassigned). Entries inside others are listed anyway, so the
 * table reads against the registries line by line.
 *
 * Two IPv6 forms are the IPv4 address they carry in their last 32 bits, and are judged as that
 * address: IPv4-mapped (::ffff:0:0/96, how dual-stack sockets write IPv4) and the NAT64
 * well-known prefix (64:ff9b::/96, what DNS64 answers for every IPv4-only host on an IPv6-only
 * network, so refusing it whole would refuse every IPv4 receiver there). Every other form that
 * embeds an IPv4 address (IPv4-compatible ::/96, local-use NAT64 64:ff9b:1::/48, 6to4 2002::/16,
 * Teredo 2001::/32) is refused whatever it embeds.
 */
export interface SpecialRange {
  cidr: string;
  name: string;
  rfc: string;
}

/** IANA IPv4 Special-Purpose Address Registry, plus multicast. */
export const SPECIAL_IPV4: readonly SpecialRange[] = [
  { cidr: '0.0.0.0/8', name: '"This network"', rfc: 'RFC 791 §3.2' },
  { cidr: '0.0.0.0/32', name: '"This host on this network"', rfc: 'RFC 1122 §3.2.1.3' },
  { cidr: '10.0.0.0/8', name: 'Private-Use', rfc: 'RFC 1918' },
  { cidr: '100.64.0.0/10', name: 'Shared Address Space', rfc: 'RFC 6598' },
  { cidr: '127.0.0.0/8', name: 'Loopback', rfc: 'RFC 1122 §3.2.1.3' },
  { cidr: '169.254.0.0/16', name: 'Link Local', rfc: 'RFC 3927' },
  { cidr: '172.16.0.0/12', name: 'Private-Use', rfc: 'RFC 1918' },
  { cidr: '192.0.0.0/24', name: 'IETF Protocol Assignments', rfc: 'RFC 6890 §2.1' },
  { cidr: '192.0.0.0/29', name: 'IPv4 Service Continuity Prefix', rfc: 'RFC 7335' },
  { cidr: '192.0.0.8/32', name: 'IPv4 dummy address', rfc: 'RFC 7600' },
  { cidr: '192.0.0.9/32', name: 'Port Control Protocol Anycast', rfc: 'RFC 7723' },
  { cidr: '192.0.0.10/32', name: 'Traversal Using Relays around NAT Anycast', rfc: 'RFC 8155' },
  { cidr: '192.0.0.170/32', name: 'NAT64/DNS64 Discovery', rfc: 'RFC 8880, RFC 7050 §2.2' },
  { cidr: '192.0.0.171/32', name: 'NAT64/DNS64 Discovery', rfc: 'RFC 8880, RFC 7050 §2.2' },
  { cidr: '192.0.2.0/24', name: 'Documentation (TEST-NET-1)', rfc: 'RFC 5737' },
  { cidr: '192.31.196.0/24', name: 'AS112-v4', rfc: 'RFC 7535' },
  { cidr: '192.52.193.0/24', name: 'AMT', rfc: 'RFC 7450' },
  { cidr: '192.88.99.0/24', name: 'Deprecated (6to4 Relay Anycast)', rfc: 'RFC 7526' },
  { cidr: '192.168.0.0/16', name: 'Private-Use', rfc: 'RFC 1918' },
  { cidr: '192.175.48.0/24', name: 'Direct Delegation AS112 Service', rfc: 'RFC 7534' },
  { cidr: '198.18.0.0/15', name: 'Benchmarking', rfc: 'RFC 2544' },
  { cidr: '198.51.100.0/24', name: 'Documentation (TEST-NET-2)', rfc: 'RFC 5737' },
  { cidr: '203.0.113.0/24', name: 'Documentation (TEST-NET-3)', rfc: 'RFC 5737' },
  { cidr: '224.0.0.0/4', name: 'Multicast (IANA Multicast Address Space registry)', rfc: 'RFC 5771' },
  { cidr: '240.0.0.0/4', name: 'Reserved', rfc: 'RFC 1112 §4' },
  { cidr: '255.255.255.255/32', name: 'Limited Broadcast', rfc: 'RFC 8190, RFC 919 §7' },
];

/** IANA IPv6 Special-Purpose Address Registry, plus multicast and site-local. */
export const SPECIAL_IPV6: readonly (SpecialRange & { embedsIpv4?: string })[] = [
  { cidr: '::1/128', name: 'Loopback Address', rfc: 'RFC 4291' },
  { cidr: '::/128', name: 'Unspecified Address', rfc: 'RFC 4291' },
  { cidr: '::ffff:0:0/96', name: 'IPv4-mapped Address', rfc: 'RFC 4291', embedsIpv4: '::ffff:' },
  { cidr: '64:ff9b::/96', name: 'IPv4-IPv6 Translat.', rfc: 'RFC 6052', embedsIpv4: '64:ff9b::' },
  { cidr: '64:ff9b:1::/48', name: 'IPv4-IPv6 Translat. (local use)', rfc: 'RFC 8215' },
  { cidr: '100::/64', name: 'Discard-Only Address Block', rfc: 'RFC 6666' },
  { cidr: '100:0:0:1::/64', name: 'Dummy IPv6 Prefix', rfc: 'RFC 9780' },
  { cidr: '2001::/23', name: 'IETF Protocol Assignments', rfc: 'RFC 2928' },
  { cidr: '2001::/32', name: 'TEREDO', rfc: 'RFC 4380, RFC 8190' },
  { cidr: '2001:1::1/128', name: 'Port Control Protocol Anycast', rfc: 'RFC 7723' },
  { cidr: '2001:1::2/128', name: 'Traversal Using Relays around NAT Anycast', rfc: 'RFC 8155' },
  { cidr: '2001:1::3/128', name: 'DNS-SD Service Registration Protocol Anycast', rfc: 'RFC 9665' },
  { cidr: '2001:2::/48', name: 'Benchmarking', rfc: 'RFC 5180, RFC Errata 1752' },
  { cidr: '2001:3::/32', name: 'AMT', rfc: 'RFC 7450' },
  { cidr: '2001:4:112::/48', name: 'AS112-v6', rfc: 'RFC 7535' },
  { cidr: '2001:10::/28', name: 'Deprecated (previously ORCHID)', rfc: 'RFC 4843' },
  { cidr: '2001:20::/28', name: 'ORCHIDv2', rfc: 'RFC 7343' },
  { cidr: '2001:30::/28', name: 'Drone Remote ID Protocol Entity Tags (DETs) Prefix', rfc: 'RFC 9374' },
  { cidr: '2001:db8::/32', name: 'Documentation', rfc: 'RFC 3849' },
  { cidr: '2002::/16', name: '6to4', rfc: 'RFC 3056' },
  { cidr: '2620:4f:8000::/48', name: 'Direct Delegation AS112 Service', rfc: 'RFC 7534' },
  { cidr: '3fff::/20', name: 'Documentation', rfc: 'RFC 9637' },
  { cidr: '5f00::/16', name: 'Segment Routing (SRv6) SIDs', rfc: 'RFC 9602' },
  { cidr: 'fc00::/7', name: 'Unique-Local', rfc: 'RFC 4193, RFC 8190' },
  { cidr: 'fe80::/10', name: 'Link-Local Unicast', rfc: 'RFC 4291' },
  { cidr: 'fec0::/10', name: 'Site-Local (deprecated)', rfc: 'RFC 3879' },
  { cidr: 'ff00::/8', name: 'Multicast', rfc: 'RFC 4291 §2.7' },
];

function subnet(cidr: string): [string, number] {
  const [network, bits] = cidr.split('/');
  return [network, Number(bits)];
}

const FORBIDDEN_IPV4 = new BlockList();
for (const { cidr } of SPECIAL_IPV4) FORBIDDEN_IPV4.addSubnet(...subnet(cidr), 'ipv4');

/** The IPv6 forms that stand for an IPv4 address, and the images of every IPv4 range in them. */
const EMBEDDING = new BlockList();
const FORBIDDEN_EMBEDDED = new BlockList();
const FORBIDDEN_IPV6 = new BlockList();
for (const { cidr, embedsIpv4 } of SPECIAL_IPV6) {
  const [network, bits] = subnet(cidr);
  if (!embedsIpv4) {
    FORBIDDEN_IPV6.addSubnet(network, bits, 'ipv6');
    continue;
  }
  EMBEDDING.addSubnet(network, bits, 'ipv6');
  // `embedsIpv4` is the text an embedded address is written after: ::ffff:10.0.0.0/104.
  for (const v4 of SPECIAL_IPV4) {
    const [address, v4bits] = subnet(v4.cidr);
    FORBIDDEN_EMBEDDED.addSubnet(`${embedsIpv4}${address}`, bits + v4bits, 'ipv6');
  }
}

/** Global unicast: the only IPv6 space the IANA IPv6 Address Space registry assigns for use. */
const GLOBAL_UNICAST = new BlockList();
GLOBAL_UNICAST.addSubnet('2000::', 3, 'ipv6');

/** True when an address (IPv4 or IPv6 text) lies in a range a webhook may not reach. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  // Not an address, or an IPv6 address with a zone (only link-local addresses have one).
  if (family === 0 || address.includes('%')) return true;
  if (family === 4) return FORBIDDEN_IPV4.check(address, 'ipv4');
  if (EMBEDDING.check(address, 'ipv6')) return FORBIDDEN_EMBEDDED.check(address, 'ipv6');
  return FORBIDDEN_IPV6.check(address, 'ipv6') || !GLOBAL_UNICAST.check(address, 'ipv6');
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
      `the webhook host ${hostname} is not a public address: ${forbidden.address} is in a special-purpose range (loopback, private, link-local, documentation, benchmarking, reserved and the like)`,
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
