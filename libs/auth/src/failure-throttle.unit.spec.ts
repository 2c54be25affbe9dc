import { failureSource } from './failure-throttle';

describe('failureSource', () => {
  it.each([
    ['an IPv4 address', '203.0.113.7', '203.0.113.7'],
    ['an IPv4-mapped IPv6 address', '::ffff:203.0.113.7', '203.0.113.7'],
    ['an IPv4-mapped address in hex', '::ffff:cb00:7107', '203.0.113.7'],
    ['an IPv6 address, by its /64', '2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['another address of the same /64', '2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['a compressed /64', '2001:db8::5', '2001:db8:0:0::/64'],
    ['upper-case and leading zeros', '2001:0DB8:0001:0002::1', '2001:db8:1:2::/64'],
    ['a zone id', 'fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['loopback', '::1', '0:0:0:0::/64'],
    ['an IPv6 address with an IPv4 tail', '64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['no address', 'not an ip', 'not-an-address'],
    ['an empty string', '', 'not-an-address'],
  ])('counts %s as %j', (_, ip, source) => {
    expect(failureSource(ip)).toBe(source);
  });

  it('tells apart two /64s', () => {
    expect(failureSource('2001:db8:1:2::1')).not.toBe(failureSource('2001:db8:1:3::1'));
  });
});
