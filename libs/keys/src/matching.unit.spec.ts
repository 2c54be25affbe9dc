import { posix, win32 } from 'node:path';
import fc from 'fast-check';
import {
  boundaryCovers,
  ipAllowed,
  isCanonicalResource,
  isIpAddress,
  parseCidr,
  RESOURCE_MAX_LENGTH,
  scopeCovers,
  scopesCover,
  withinBoundaries,
} from './matching';

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

describe('isCanonicalResource', () => {
  it.each([
    'site:plant-7',
    'site:plant-7/asset-group:pumps/asset:P-101',
    'region:EU-West_1/site:plant.7/line:A~2',
    'a:b',
    'a.b:c..d/x-y:.z',
    `${'t'.repeat(64)}:${'V'.repeat(128)}`,
  ])('accepts %j', (resource) => {
    expect(isCanonicalResource(resource)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['a segment without a type', 'site:plant-7/asset'],
    ['a trailing slash', 'site:plant-7/'],
    ['a leading slash', '/site:plant-7'],
    ['an empty segment', 'site:plant-7//asset:1'],
    ['a . segment', 'site:plant-7/./asset:1'],
    ['a .. segment', 'site:plant-7/../site:plant-8'],
    ['a value of dots', 'site:plant-7/asset:..'],
    ['a value of one dot', 'site:plant-7/asset:.'],
    ['a type of dots (NTFS: stream x of ..)', 'site:plant-7/..:x'],
    ['a type of one dot', 'site:plant-7/.:x'],
    ['a value of three dots', 'site:...'],
    ['percent-encoded dots', 'site:plant-7/%2e%2e/site:plant-8'],
    ['percent-encoded slash', 'site:plant-7%2f..%2fsite:plant-8'],
    ['percent-encoded value', 'site:plant-7/asset:%41'],
    ['backslashes', 'site:plant-7\\..\\site:plant-8'],
    ['a backslash in a value', 'site:plant-7/asset:a\\b'],
    ['a space', 'site:plant 7'],
    ['a leading space', ' site:plant-7'],
    ['a newline', 'site:plant-7\n'],
    ['a tab', 'site:plant-7/asset:\t1'],
    ['a NUL', 'site:plant-7/asset:1\u0000'],
    ['a query', 'site:plant-7/asset:1?x=1'],
    ['a fragment', 'site:plant-7#asset:1'],
    ['fullwidth dots', 'site:plant-7/\uff0e\uff0e/site:plant-8'],
    ['a two-dot leader', 'site:plant-7/asset:\u2025'],
    ['a division slash', 'site:plant-7\u2215asset:1'],
    ['a fullwidth slash', 'site:plant-7\uff0fasset:1'],
    ['a Cyrillic a', 'site:pl\u0430nt-7'],
    ['a combining mark', 'site:plant-7\u0301'],
    ['a zero-width space', 'site:plant-7\u200b/asset:1'],
    ['an upper-case type', 'Site:plant-7'],
    ['two colons', 'site:plant:7'],
    ['an empty value', 'site:'],
    ['an empty type', ':plant-7'],
    ['a type over 64', `${'t'.repeat(65)}:v`],
    ['a value over 128', `site:${'v'.repeat(129)}`],
  ])('refuses %s: %j', (_label, resource) => {
    expect(isCanonicalResource(resource)).toBe(false);
  });

  it(`refuses a well-formed resource over ${RESOURCE_MAX_LENGTH} characters`, () => {
    const full = Array.from({ length: 15 }, () => `a:${'x'.repeat(126)}`).join('/');
    const longest = `${full}/a:${'x'.repeat(111)}`;
    expect(longest).toHaveLength(RESOURCE_MAX_LENGTH);
    expect(isCanonicalResource(longest)).toBe(true);
    expect(isCanonicalResource(`${longest}x`)).toBe(false);
  });
});

describe('a non-canonical resource is inside no boundary', () => {
  it.each([
    'site:plant-7/../site:plant-8',
    'site:plant-7/../plant-8',
    'site:plant-7/..',
    'site:plant-7/.',
    'site:plant-7/',
    'site:plant-7//asset:1',
    'site:plant-7/./asset:1',
    'site:plant-7/asset:1/',
    'site:plant-7/%2e%2e/site:plant-8',
    'site:plant-7/%2E%2E',
    'site:plant-7/asset:..',
    'site:plant-7/..:x',
    'site:plant-7/..\\site:plant-8',
    'site:plant-7/\uff0e\uff0e/site:plant-8',
    'site:plant-7/asset:1\n',
  ])('site:plant-7 does not cover %j', (resource) => {
    expect(boundaryCovers('site:plant-7', resource)).toBe(false);
    expect(withinBoundaries(['site:plant-7'], resource)).toBe(false);
    expect(withinBoundaries(['site:plant-8', 'site:plant-7'], resource)).toBe(false);
  });

  it('an unbounded list takes any resource, canonical or not', () => {
    expect(withinBoundaries([], 'site:plant-7/../plant-8')).toBe(true);
    expect(withinBoundaries([], '')).toBe(true);
    expect(withinBoundaries([], '/api/v1/tickets?id=7')).toBe(true);
  });

  it('a boundary that is not canonical covers nothing, not even itself', () => {
    expect(boundaryCovers('site:..', 'site:..')).toBe(false);
    expect(boundaryCovers('site:plant-7/', 'site:plant-7/')).toBe(false);
    expect(boundaryCovers('', '/site:plant-7')).toBe(false);
    expect(withinBoundaries(['..:x'], '..:x/a:b')).toBe(false);
  });
});

describe('resource matching, fuzzed', () => {
  const NAME = fc.stringMatching(/^[a-z0-9._-]{1,8}$/).filter((s) => !/^\.+$/.test(s));
  const VALUE = fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/).filter((s) => !/^\.+$/.test(s));
  const segment = fc.tuple(NAME, VALUE).map(([t, v]) => `${t}:${v}`);
  const canonical = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
  /** The pieces an attacker assembles a resource from, next to the pieces of real ones. */
  const token = fc.constantFrom(
    '/',
    '//',
    '.',
    '..',
    ':',
    '%2e',
    '%2E',
    '%2f',
    '%5c',
    '%',
    '%00',
    '\\',
    'asset',
    'asset:1',
    ':x',
    'a',
    'A',
    '-',
    '~',
    '_',
    ' ',
    '\t',
    '\n',
    '\u0000',
    '\u2025',
    '\uff0e',
    '\uff0f',
    '\u2215',
    '\u0430',
    '\u200b',
    '?',
    '#',
    ';',
  );
  const attack = fc.oneof(
    fc.array(token, { minLength: 1, maxLength: 10 }).map((t) => t.join('')),
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );
  /** A resource built on the boundary, so that many are inside it or nearly. */
  const resource = (boundary: string) =>
    fc.oneof(
      attack.map((suffix) => `${boundary}/${suffix}`),
      attack.map((suffix) => `${boundary}${suffix}`),
      fc.tuple(attack, attack).map(([a, b]) => `${a}${boundary}${b}`),
      canonical.map((rest) => `${boundary}/${rest}`),
      attack,
    );
  const cases = canonical.chain((boundary) => fc.tuple(fc.constant(boundary), resource(boundary)));

  /** Written apart from the grammar: the features that make a resource non-canonical. */
  function nonCanonical(r: string): boolean {
    if (r === '' || /[^\x21-\x7e]/.test(r) || /[%\\?#;]/.test(r)) return true;
    return r.split('/').some((seg) => {
      if (seg === '' || seg === '.' || seg === '..') return true;
      const parts = seg.split(':');
      return parts.length !== 2 || parts.some((p) => /^\.*$/.test(p));
    });
  }

  /** How a consumer of the resource might rewrite it before acting on it. */
  const normalisers: Array<[string, (r: string) => string]> = [
    ['POSIX path', (r) => posix.normalize(r)],
    ['Windows path', (r) => win32.normalize(r).replace(/\\/g, '/')],
    // Appended to a base URL's path, as a gateway forwarding to `<upstream>/<resource>` would.
    ['URL path', (r) => new URL(`http://h/base/${r}`).pathname.replace(/^\/base\//, '')],
    ['decoded URL path', (r) => decodeURIComponent(new URL(`http://h/base/${r}`).pathname).slice(6)],
    ['NFKC', (r) => r.normalize('NFKC')],
  ];
  const covered = (b: string, r: string) => r === b || r.startsWith(`${b}/`);

  it('no non-canonical resource is ever inside a boundary, and no normaliser moves one that is outside it', () => {
    let inside = 0;
    let refusedNonCanonical = 0;
    fc.assert(
      fc.property(cases, ([boundary, r]) => {
        const within = withinBoundaries([boundary], r);
        if (nonCanonical(r)) {
          expect(within).toBe(false);
          refusedNonCanonical += 1;
        }
        if (within) {
          inside += 1;
          for (const [name, normalise] of normalisers) {
            // A consumer normalises the boundary it was given as it normalises the resource: Node's
            // win32.normalize, for one, puts `.\` before a Windows device name such as `prn:`.
            const still = covered(normalise(boundary), normalise(r));
            expect({ name, r, covered: still }).toEqual({ name, r, covered: true });
          }
        }
      }),
      { numRuns: 5000 },
    );
    // The property is not vacuous: both kinds were generated in numbers.
    expect(inside).toBeGreaterThan(500);
    expect(refusedNonCanonical).toBeGreaterThan(2000);
  });

  it('a resource under a boundary named like a Windows device stays under it, normalised (a fuzz find)', () => {
    const boundary = 'prn:~P~--/9__o:9~~-_7.~/_-39n.-:-7x7O~S./_-a-:__~4e3';
    const r = `${boundary}/a:-`;
    expect(withinBoundaries([boundary], r)).toBe(true);
    for (const [name, normalise] of normalisers) {
      expect({ name, covered: covered(normalise(boundary), normalise(r)) }).toEqual({ name, covered: true });
    }
  });

  it('every canonical resource below a boundary is inside it', () => {
    fc.assert(
      fc.property(canonical, canonical, (boundary, rest) => {
        expect(withinBoundaries([boundary], boundary)).toBe(true);
        expect(withinBoundaries([boundary], `${boundary}/${rest}`)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isIpAddress', () => {
  it.each([
    '10.0.0.1',
    '0.0.0.0',
    '255.255.255.255',
    '::',
    '::1',
    '2001:db8::1',
    '2001:0db8:0000:0000:0000:0000:0000:0001',
    'FE80::1',
    '::ffff:10.0.0.1',
    '1:2:3:4:5:6:7:8',
  ])('accepts %j', (ip) => {
    expect(isIpAddress(ip)).toBe(true);
  });

  it.each([
    '',
    '999.1.1.1',
    '256.0.0.1',
    '10.0.0.1/33',
    '10.0.0.1/32',
    '2001:db8::/32',
    '1.2.3',
    '1.2.3.4.5',
    '010.0.0.1',
    '0x7f.0.0.1',
    '2130706433',
    ' 10.0.0.1',
    '10.0.0.1 ',
    '10.0.0.1\n',
    '10.0.0.1:80',
    '[::1]',
    '[::1]:443',
    'fe80::1%eth0',
    '2001:db8::1%25eth0',
    '::ffff:999.0.0.1',
    '1:2:3:4:5:6:7:8:9',
    '2001:db8:::1',
    'localhost',
    '\uff11\uff10.0.0.1',
    '10.0.0.1, 10.0.0.2',
  ])('refuses %j', (ip) => {
    expect(isIpAddress(ip)).toBe(false);
  });
});

describe('parseCidr', () => {
  it('reads an IPv4 or IPv6 network and its prefix length', () => {
    expect(parseCidr('10.20.0.0/16')).toEqual({ network: '10.20.0.0', bits: 16, family: 4 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ network: '0.0.0.0', bits: 0, family: 4 });
    expect(parseCidr('10.20.1.7/32')).toEqual({ network: '10.20.1.7', bits: 32, family: 4 });
    expect(parseCidr('2001:db8::/32')).toEqual({ network: '2001:db8::', bits: 32, family: 6 });
    expect(parseCidr('::1/128')).toEqual({ network: '::1', bits: 128, family: 6 });
  });

  it.each([
    '10.0.0.1/33',
    '10.0.0.0/99',
    '2001:db8::/129',
    '10.0.0.0/08',
    '10.0.0.0/-1',
    '10.0.0.0/',
    '10.0.0.0',
    '10.0.0.0/8/8',
    '999.0.0.0/8',
    '010.0.0.0/8',
    'fe80::%eth0/64',
    ' 10.0.0.0/8',
    '10.0.0.0/8 ',
    '/8',
    '',
  ])('refuses %j', (cidr) => {
    expect(parseCidr(cidr)).toBeNull();
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

  it('an empty list allows nothing that is not an address', () => {
    for (const garbage of ['', '999.1.1.1', '10.0.0.1/33', 'not-an-ip', 'fe80::1%eth0', ' 10.20.1.7']) {
      expect(ipAllowed([], garbage)).toBe(false);
    }
  });

  it('a CIDR that does not parse admits nothing, and the others still apply', () => {
    expect(ipAllowed(['10.0.0.0/33'], '10.0.0.1')).toBe(false);
    expect(ipAllowed(['10.0.0.0/08'], '10.0.0.1')).toBe(false);
    expect(ipAllowed(['garbage', '10.0.0.0/8'], '10.0.0.1')).toBe(true);
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
