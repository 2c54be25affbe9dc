import { isIP } from 'node:net';

/**
 * The bytes of an IP address: 4 for IPv4, 16 for IPv6 (`::` expanded, a trailing dotted quad read
 * as the last two groups), or null for what is not an address or a form this does not read (an
 * IPv6 zone). One reader for CIDR checks and for grouping addresses by network.
 */
export function ipAddressBytes(address: string): number[] | null {
  const family = isIP(address);
  if (family === 4) return address.split('.').map(Number);
  if (family !== 6 || address.includes('%')) return null;
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [(Number(a) << 8) | Number(b), (Number(c) << 8) | Number(d)].map((n) => n.toString(16)).join(':'),
  );
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  const bytes = groups.flatMap((group) => {
    const n = parseInt(group, 16);
    return [n >> 8, n & 0xff];
  });
  return bytes.length === 16 ? bytes : null;
}
