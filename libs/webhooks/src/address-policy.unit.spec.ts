import {
  SPECIAL_IPV4,
  SPECIAL_IPV6,
  checkWebhookUrl,
  checkedAddresses,
  isForbiddenAddress,
  type Resolve,
} from './address-policy';

describe('isForbiddenAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    'not-an-address',
  ])('refuses %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'allows the public %s',
    (address) => {
      expect(isForbiddenAddress(address)).toBe(false);
    },
  );
});

describe('isForbiddenAddress: the IANA special-purpose registries', () => {
  // The first and last address of every registry entry, written out from the registries (not
  // from the table), with multicast and IPv6 site-local.
  it.each([
    ['0.0.0.0/8 "this network"', '0.0.0.1', '0.255.255.255'],
    ['10.0.0.0/8 private-use', '10.0.0.0', '10.255.255.255'],
    ['100.64.0.0/10 shared address space', '100.64.0.0', '100.127.255.255'],
    ['127.0.0.0/8 loopback', '127.0.0.0', '127.255.255.255'],
    ['169.254.0.0/16 link local', '169.254.0.0', '169.254.255.255'],
    ['172.16.0.0/12 private-use', '172.16.0.0', '172.31.255.255'],
    ['192.0.0.0/24 IETF protocol assignments', '192.0.0.0', '192.0.0.255'],
    ['192.0.0.9/32 PCP anycast', '192.0.0.9', '192.0.0.9'],
    ['192.0.0.10/32 TURN anycast', '192.0.0.10', '192.0.0.10'],
    ['192.0.0.170/32 NAT64 discovery', '192.0.0.170', '192.0.0.171'],
    ['192.0.2.0/24 TEST-NET-1', '192.0.2.0', '192.0.2.255'],
    ['192.31.196.0/24 AS112-v4', '192.31.196.0', '192.31.196.255'],
    ['192.52.193.0/24 AMT', '192.52.193.0', '192.52.193.255'],
    ['192.88.99.0/24 6to4 relay anycast', '192.88.99.0', '192.88.99.255'],
    ['192.168.0.0/16 private-use', '192.168.0.0', '192.168.255.255'],
    ['192.175.48.0/24 AS112 direct delegation', '192.175.48.0', '192.175.48.255'],
    ['198.18.0.0/15 benchmarking', '198.18.0.0', '198.19.255.255'],
    ['198.51.100.0/24 TEST-NET-2', '198.51.100.0', '198.51.100.255'],
    ['203.0.113.0/24 TEST-NET-3', '203.0.113.0', '203.0.113.255'],
    ['224.0.0.0/4 multicast', '224.0.0.0', '239.255.255.255'],
    ['240.0.0.0/4 reserved', '240.0.0.0', '255.255.255.254'],
    ['255.255.255.255/32 limited broadcast', '255.255.255.255', '255.255.255.255'],
    ['::1/128 loopback', '::1', '0:0:0:0:0:0:0:1'],
    ['::/128 unspecified', '::', '0:0:0:0:0:0:0:0'],
    ['64:ff9b:1::/48 local-use translation', '64:ff9b:1::', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff'],
    ['100::/64 discard-only', '100::', '100::ffff:ffff:ffff:ffff'],
    ['100:0:0:1::/64 dummy prefix', '100:0:0:1::', '100:0:0:1:ffff:ffff:ffff:ffff'],
    ['2001::/23 IETF protocol assignments', '2001::', '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001::/32 Teredo', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:0:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001:1::1/128 PCP anycast', '2001:1::1', '2001:1::1'],
    ['2001:1::2/128 TURN anycast', '2001:1::2', '2001:1::2'],
    ['2001:1::3/128 DNS-SD SRP anycast', '2001:1::3', '2001:1::3'],
    ['2001:2::/48 benchmarking', '2001:2::', '2001:2:0:ffff:ffff:ffff:ffff:ffff'],
    ['2001:3::/32 AMT', '2001:3::', '2001:3:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001:4:112::/48 AS112-v6', '2001:4:112::', '2001:4:112:ffff:ffff:ffff:ffff:ffff'],
    ['2001:10::/28 deprecated ORCHID', '2001:10::', '2001:1f:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001:20::/28 ORCHIDv2', '2001:20::', '2001:2f:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001:30::/28 DETs', '2001:30::', '2001:3f:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001:db8::/32 documentation', '2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2002::/16 6to4', '2002::', '2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2620:4f:8000::/48 AS112 direct delegation', '2620:4f:8000::', '2620:4f:8000:ffff:ffff:ffff:ffff:ffff'],
    ['3fff::/20 documentation', '3fff::', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['5f00::/16 SRv6 SIDs', '5f00::', '5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['fc00::/7 unique-local', 'fc00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['fe80::/10 link-local', 'fe80::', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['fec0::/10 site-local', 'fec0::', 'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['ff00::/8 multicast', 'ff00::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ])('refuses %s, first and last (%s, %s)', (_range, first, last) => {
    expect(isForbiddenAddress(first)).toBe(true);
    expect(isForbiddenAddress(last)).toBe(true);
  });

  it.each([
    ['2001:db8::1', 'documentation, the reported case'],
    ['2001:DB8::1', 'upper case'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', 'written out in full'],
    ['4000::1', 'outside global unicast 2000::/3'],
    ['8000::1', 'outside global unicast 2000::/3'],
    ['e000::1', 'outside global unicast 2000::/3'],
    ['1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'just below 2000::/3'],
  ])('refuses %s (%s)', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each([
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::ffff:a00:1', 'IPv4-mapped private, in hex'],
    ['::ffff:198.18.0.1', 'IPv4-mapped benchmarking'],
    ['::ffff:203.0.113.7', 'IPv4-mapped documentation'],
    ['::ffff:100.64.0.1', 'IPv4-mapped shared'],
    ['0:0:0:0:0:ffff:7f00:1', 'IPv4-mapped loopback, written out'],
    ['64:ff9b::10.0.0.1', 'NAT64 of a private address'],
    ['64:ff9b::7f00:1', 'NAT64 of loopback, in hex'],
    ['64:ff9b::169.254.169.254', 'NAT64 of the metadata address'],
    ['64:ff9b::192.0.2.1', 'NAT64 of documentation'],
    ['64:ff9b::240.0.0.1', 'NAT64 of reserved'],
    ['64:ff9b:1::808:808', 'local-use NAT64, even of a public address'],
    ['::10.0.0.1', 'IPv4-compatible (deprecated)'],
    ['::8.8.8.8', 'IPv4-compatible, even of a public address'],
    ['::ffff:0:a00:1', 'IPv4-translated (SIIT)'],
    ['2002:a00:1::1', '6to4 of a private address'],
    ['2002:7f00:1::1', '6to4 of loopback'],
    ['2002:808:808::1', '6to4, even of a public address'],
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'Teredo of 10.0.0.1 (inverted)'],
    ['fe80::1%eth0', 'a zone'],
  ])('refuses %s (%s)', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each([
    '1.0.0.1',
    '1.1.1.1',
    '9.255.255.255',
    '11.0.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '169.255.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '191.255.255.255',
    '192.0.1.0',
    '192.0.3.0',
    '192.88.98.255',
    '192.88.100.0',
    '192.167.255.255',
    '192.169.0.0',
    '198.17.255.255',
    '198.20.0.0',
    '198.51.99.255',
    '198.51.101.0',
    '203.0.112.255',
    '203.0.114.0',
    '223.255.255.255',
    '2000::1',
    '2001:200::1',
    '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff',
    '2001:db9::1',
    '2003::1',
    '2620:4f:7fff:ffff:ffff:ffff:ffff:ffff',
    '2620:4f:8001::',
    '2a00:1450:4001::1',
    '3ffe::1',
    '3fff:1000::',
    '::ffff:8.8.8.8',
    '::ffff:93.184.215.14',
    '64:ff9b::8.8.8.8',
    '64:ff9b::5db8:d70e',
  ])('allows the public %s, next to a refused range or carrying a public IPv4', (address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  it('refuses the network address of every entry in its tables', () => {
    for (const { cidr } of [...SPECIAL_IPV4, ...SPECIAL_IPV6]) {
      const [network] = cidr.split('/');
      expect({ cidr, forbidden: isForbiddenAddress(network) }).toEqual({ cidr, forbidden: true });
    }
  });

  it('tables every registry entry this policy is held to', () => {
    const cidrs = [...SPECIAL_IPV4, ...SPECIAL_IPV6].map((r) => r.cidr);
    for (const required of [
      '0.0.0.0/8',
      '100.64.0.0/10',
      '192.0.2.0/24',
      '198.18.0.0/15',
      '198.51.100.0/24',
      '203.0.113.0/24',
      '224.0.0.0/4',
      '240.0.0.0/4',
      '2001:db8::/32',
      '3fff::/20',
      '64:ff9b::/96',
      '2002::/16',
      '2001::/32',
      'ff00::/8',
    ]) {
      expect(cidrs).toContain(required);
    }
    for (const range of [...SPECIAL_IPV4, ...SPECIAL_IPV6]) expect(range.rfc).toMatch(/^RFC \d+/);
  });
});

const resolving =
  (answers: Record<string, string[]>): Resolve =>
  async (hostname) => {
    const addresses = answers[hostname];
    if (!addresses)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('checkWebhookUrl', () => {
  const resolve = resolving({
    'hooks.example.com': ['93.184.215.14', '2606:4700::1111'],
    'rebind.example.com': ['93.184.215.14', '127.0.0.1'],
    'metadata.example.com': ['169.254.169.254'],
    'v6-private.example.com': ['fd00::5'],
    'documentation.example.com': ['93.184.215.14', '2001:db8::5'],
  });
  const policy = { allowPrivate: false, resolve };

  it('accepts an http(s) URL whose host resolves only to public addresses', async () => {
    await expect(checkWebhookUrl('https://hooks.example.com/keyward', policy)).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('http://93.184.215.14:8080/x', policy)).resolves.toBeInstanceOf(URL);
  });

  it.each([
    'https://rebind.example.com/',
    'https://metadata.example.com/latest',
    'https://v6-private.example.com/',
    'http://127.0.0.1:8080/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://10.0.0.8/',
    'http://[2001:db8::1]/',
    'http://198.18.0.1/',
    'http://192.0.2.10/',
    'http://198.51.100.7/',
    'http://203.0.113.9/',
    'http://100.64.0.1/',
    'http://240.0.0.1/',
    'http://224.0.0.251/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[2002:a00:1::1]/',
    'http://[ff02::1]/',
    'https://documentation.example.com/',
    'https://nowhere.example.com/',
  ])('refuses %s with POLICY_VIOLATION on url', async (url) => {
    await expect(checkWebhookUrl(url, policy)).rejects.toMatchObject({
      code: 'POLICY_VIOLATION',
      rule: 'url',
    });
  });

  it.each([
    'ftp://hooks.example.com/',
    'file:///etc/passwd',
    'hooks.example.com/keyward',
    'https://user:pass@hooks.example.com/',
    'https://hooks.example.com/#frag',
    'javascript:alert(1)',
  ])('refuses the form of %s with VALIDATION_FAILED on url', async (url) => {
    await expect(checkWebhookUrl(url, policy)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [expect.objectContaining({ field: 'url' })],
    });
  });

  it('with private addresses allowed, checks the form only and resolves nothing', async () => {
    const never: Resolve = () => Promise.reject(new Error('must not resolve'));
    await expect(
      checkWebhookUrl('http://127.0.0.1:9/', { allowPrivate: true, resolve: never }),
    ).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('ftp://127.0.0.1/', { allowPrivate: true })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });
});

describe('checkedAddresses', () => {
  it('answers the resolved addresses when all are public', async () => {
    const resolve = resolving({ 'hooks.example.com': ['93.184.215.14'] });
    await expect(checkedAddresses('hooks.example.com', resolve)).resolves.toEqual([
      { address: '93.184.215.14', family: 4 },
    ]);
  });

  it('refuses a name that resolves to nothing', async () => {
    await expect(checkedAddresses('empty.example.com', async () => [])).rejects.toMatchObject({
      code: 'POLICY_VIOLATION',
    });
  });
});
