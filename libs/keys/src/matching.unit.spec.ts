import { boundaryCovers, ipAllowed, scopeCovers, scopesCover, withinBoundaries } from './matching';

describe('scopeCovers', () => {
  it('a scope covers itself', () => {
    expect(scopeCovers('tickets:read', 'tickets:read')).toBe(true);
    expect(scopeCovers('summaries:draft', 'summaries:draft')).toBe(true);
  });

  it('a different action or product is not covered', () => {
    expect(scopeCovers('tickets:read', 'tickets:write')).toBe(false);
    expect(scopeCovers('tickets:read', 'orders:read')).toBe(false);
    expect(scopeCovers('tickets:read', 'tickets:reads')).toBe(false);
    expect(scopeCovers('tickets:read', 'tickets:rea')).toBe(false);
  });

  it('product:* covers every action of that product', () => {
    expect(scopeCovers('tickets:*', 'tickets:read')).toBe(true);
    expect(scopeCovers('tickets:*', 'tickets:write')).toBe(true);
    expect(scopeCovers('tickets:*', 'tickets:a.b-c_d')).toBe(true);
  });

  it('product:* does not cover a product whose name merely starts the same', () => {
    expect(scopeCovers('tickets:*', 'ticketsx:read')).toBe(false);
    expect(scopeCovers('tickets:*', 'tickets2:read')).toBe(false);
    expect(scopeCovers('tickets:*', 'tickets-archive:read')).toBe(false);
    expect(scopeCovers('tickets:*', 'ticket:read')).toBe(false);
    expect(scopeCovers('a:*', 'ab:read')).toBe(false);
  });

  it('product:* covers itself; an action never covers the wildcard', () => {
    expect(scopeCovers('a:*', 'a:*')).toBe(true);
    expect(scopeCovers('tickets:*', 'tickets:*')).toBe(true);
    expect(scopeCovers('tickets:read', 'tickets:*')).toBe(false);
    expect(scopeCovers('tickets:*', 'orders:*')).toBe(false);
  });

  it('a * anywhere but after the colon is no wildcard', () => {
    expect(scopeCovers('tickets*', 'tickets:read')).toBe(false);
    expect(scopeCovers('tickets:r*', 'tickets:read')).toBe(false);
  });
});

describe('scopesCover', () => {
  it('true when any granted scope covers the wanted one', () => {
    expect(scopesCover(['orders:read', 'tickets:*'], 'tickets:write')).toBe(true);
    expect(scopesCover(['orders:read', 'tickets:read'], 'tickets:read')).toBe(true);
  });

  it('false when none does, and for an empty list', () => {
    expect(scopesCover(['orders:read', 'tickets:read'], 'tickets:write')).toBe(false);
    expect(scopesCover([], 'tickets:read')).toBe(false);
  });
});

describe('boundaryCovers and withinBoundaries: by whole path segments', () => {
  it('a boundary covers itself and everything below it', () => {
    expect(boundaryCovers('site:plant-7', 'site:plant-7')).toBe(true);
    expect(boundaryCovers('site:plant-7', 'site:plant-7/asset:1')).toBe(true);
    expect(boundaryCovers('site:plant-7', 'site:plant-7/asset-group:pumps/asset:P-101')).toBe(true);
    expect(withinBoundaries(['site:plant-7'], 'site:plant-7')).toBe(true);
    expect(withinBoundaries(['site:plant-7'], 'site:plant-7/asset:1')).toBe(true);
  });

  it('not a segment that merely starts the same', () => {
    expect(boundaryCovers('site:plant-7', 'site:plant-70')).toBe(false);
    expect(boundaryCovers('site:plant-7', 'site:plant-7x/asset:1')).toBe(false);
    expect(boundaryCovers('site:plant-7', 'site:plant-7-annex')).toBe(false);
    expect(withinBoundaries(['site:plant-7'], 'site:plant-70')).toBe(false);
    expect(withinBoundaries(['site:plant-7'], 'site:plant-7x/asset:1')).toBe(false);
  });

  it('not a parent, a sibling or a path that only contains the boundary', () => {
    expect(boundaryCovers('site:plant-7/asset-group:pumps', 'site:plant-7')).toBe(false);
    expect(boundaryCovers('site:plant-7/asset-group:pumps', 'site:plant-7/asset-group:valves')).toBe(false);
    expect(boundaryCovers('site:plant-7', 'region:eu/site:plant-7')).toBe(false);
    expect(boundaryCovers('site:plant-7', 'site:plant-8')).toBe(false);
  });

  it('any of several boundaries will do', () => {
    const boundaries = ['site:plant-7/asset-group:pumps', 'site:plant-9'];
    expect(withinBoundaries(boundaries, 'site:plant-7/asset-group:pumps/asset:P-101')).toBe(true);
    expect(withinBoundaries(boundaries, 'site:plant-9/asset:1')).toBe(true);
    expect(withinBoundaries(boundaries, 'site:plant-7/asset-group:valves')).toBe(false);
    expect(withinBoundaries(boundaries, 'site:plant-7')).toBe(false);
  });

  it('an empty list is unbounded', () => {
    expect(withinBoundaries([], 'site:plant-7')).toBe(true);
    expect(withinBoundaries([], 'anything/at:all')).toBe(true);
  });
});

describe('ipAllowed', () => {
  describe('IPv4', () => {
    const cidrs = ['10.20.0.0/16'];

    it('inside the range', () => {
      expect(ipAllowed(cidrs, '10.20.0.0')).toBe(true);
      expect(ipAllowed(cidrs, '10.20.1.7')).toBe(true);
      expect(ipAllowed(cidrs, '10.20.255.255')).toBe(true);
    });

    it('outside the range', () => {
      expect(ipAllowed(cidrs, '10.21.0.0')).toBe(false);
      expect(ipAllowed(cidrs, '10.19.255.255')).toBe(false);
      expect(ipAllowed(cidrs, '192.168.1.1')).toBe(false);
    });

    it('/32 admits exactly one address', () => {
      expect(ipAllowed(['10.20.1.7/32'], '10.20.1.7')).toBe(true);
      expect(ipAllowed(['10.20.1.7/32'], '10.20.1.8')).toBe(false);
      expect(ipAllowed(['10.20.1.7/32'], '10.20.1.6')).toBe(false);
    });

    it('/0 admits every IPv4 address', () => {
      expect(ipAllowed(['0.0.0.0/0'], '203.0.113.9')).toBe(true);
      expect(ipAllowed(['0.0.0.0/0'], '255.255.255.255')).toBe(true);
    });

    it('any of several ranges will do', () => {
      const two = ['10.20.0.0/16', '192.168.4.0/24'];
      expect(ipAllowed(two, '192.168.4.200')).toBe(true);
      expect(ipAllowed(two, '10.20.9.9')).toBe(true);
      expect(ipAllowed(two, '192.168.5.1')).toBe(false);
    });
  });

  describe('IPv6', () => {
    const cidrs = ['2001:db8:abcd::/48'];

    it('inside the range', () => {
      expect(ipAllowed(cidrs, '2001:db8:abcd::1')).toBe(true);
      expect(ipAllowed(cidrs, '2001:db8:abcd:ffff:ffff:ffff:ffff:ffff')).toBe(true);
      expect(ipAllowed(cidrs, '2001:0db8:abcd:0000:0000:0000:0000:0001')).toBe(true);
    });

    it('outside the range', () => {
      expect(ipAllowed(cidrs, '2001:db8:abce::1')).toBe(false);
      expect(ipAllowed(cidrs, '2001:db9::1')).toBe(false);
      expect(ipAllowed(cidrs, '::1')).toBe(false);
    });

    it('/128 admits exactly one address', () => {
      expect(ipAllowed(['2001:db8::1/128'], '2001:db8::1')).toBe(true);
      expect(ipAllowed(['2001:db8::1/128'], '2001:db8::2')).toBe(false);
    });

    it('/0 admits every IPv6 address', () => {
      expect(ipAllowed(['::/0'], '2001:db8::1')).toBe(true);
      expect(ipAllowed(['::/0'], 'fe80::1')).toBe(true);
      expect(ipAllowed(['::/0'], '::1')).toBe(true);
    });
  });

  it('an empty list allows every address, and a missing one', () => {
    expect(ipAllowed([], '10.20.1.7')).toBe(true);
    expect(ipAllowed([], '2001:db8::1')).toBe(true);
    expect(ipAllowed([], undefined)).toBe(true);
  });

  it('with a list, a missing address is refused', () => {
    expect(ipAllowed(['10.20.0.0/16'], undefined)).toBe(false);
    expect(ipAllowed(['0.0.0.0/0'], undefined)).toBe(false);
    expect(ipAllowed(['::/0'], undefined)).toBe(false);
  });

  it('with a list, an address that is not an address is refused', () => {
    for (const garbage of [
      '',
      'not-an-ip',
      '10.20.1',
      '10.20.1.256',
      '10.20.1.7/32',
      ' 10.20.1.7',
      '10.20.1.7 ',
      '2001:db8:::1',
      'localhost',
    ]) {
      expect(ipAllowed(['0.0.0.0/0', '::/0'], garbage)).toBe(false);
    }
  });

  it('an IPv4 address against an IPv6-only list is refused', () => {
    expect(ipAllowed(['2001:db8::/32'], '10.20.1.7')).toBe(false);
    // Not even against "all of IPv6": ::/0 is no grant for IPv4 clients.
    expect(ipAllowed(['::/0'], '10.20.1.7')).toBe(false);
    expect(ipAllowed(['::/64'], '10.20.1.7')).toBe(false);
  });

  it('an IPv6 address against an IPv4-only list is refused', () => {
    expect(ipAllowed(['10.20.0.0/16'], '2001:db8::1')).toBe(false);
    expect(ipAllowed(['0.0.0.0/0'], '2001:db8::1')).toBe(false);
    expect(ipAllowed(['0.0.0.0/0'], '::1')).toBe(false);
  });

  it('a mixed list matches each address against its own family', () => {
    const mixed = ['10.20.0.0/16', '2001:db8::/32'];
    expect(ipAllowed(mixed, '10.20.1.7')).toBe(true);
    expect(ipAllowed(mixed, '2001:db8::7')).toBe(true);
    expect(ipAllowed(mixed, '10.21.1.7')).toBe(false);
    expect(ipAllowed(mixed, '2001:db9::7')).toBe(false);
    // IPv4 outside its IPv4 range is not rescued by an IPv6 range that happens to be wide.
    expect(ipAllowed(['10.20.0.0/16', '::/0'], '192.168.1.1')).toBe(false);
  });

  it('an IPv4 address written as IPv6 (::ffff:a.b.c.d) is the IPv4 address', () => {
    expect(ipAllowed(['10.20.0.0/16'], '::ffff:10.20.1.7')).toBe(true);
    expect(ipAllowed(['10.20.0.0/16'], '::ffff:10.21.1.7')).toBe(false);
    expect(ipAllowed(['10.20.0.0/16', '::/0'], '::ffff:192.168.1.1')).toBe(false);
  });
});
