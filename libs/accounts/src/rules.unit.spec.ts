import {
  ACCOUNT_NAME,
  BOUNDARY,
  ENVIRONMENTS,
  LIMITS,
  SCOPE,
  boundaryError,
  cidrError,
  normalizedSet,
  scopeError,
} from './rules';

describe('ACCOUNT_NAME', () => {
  it.each(['abc', 'nightly-digest-summariser', '123', 'a-1', '---', 'a'.repeat(64)])('accepts %j', (name) => {
    expect(ACCOUNT_NAME.test(name)).toBe(true);
  });

  it.each(['', 'ab', 'a'.repeat(65), 'Abc', 'a_b', 'a b', 'a.b', 'äbc', 'abc\n', ' abc', 'abc/def'])(
    'rejects %j',
    (name) => {
      expect(ACCOUNT_NAME.test(name)).toBe(false);
    },
  );
});

describe('ENVIRONMENTS', () => {
  it('are production, staging and development', () => {
    expect([...ENVIRONMENTS]).toEqual(['production', 'staging', 'development']);
  });
});

describe('SCOPE and scopeError', () => {
  const valid = [
    'tickets:read',
    'summaries:draft',
    'tickets:*',
    'a.b_c-d:e.f_g-h',
    '0:1',
    `${'p'.repeat(64)}:${'a'.repeat(64)}`,
    'keyward:admin',
  ];
  const invalid = [
    '',
    'tickets',
    'tickets:',
    ':read',
    'Tickets:read',
    'tickets:Read',
    'tickets:read:all',
    '*:read',
    '*:*',
    'tickets:re*',
    'tickets:*x',
    'tickets :read',
    'tickets:read ',
    'tickets/read',
    `${'p'.repeat(65)}:read`,
    `tickets:${'a'.repeat(65)}`,
    'tickets:read\n',
  ];

  it.each(valid)('accepts %j', (scope) => {
    expect(SCOPE.test(scope)).toBe(true);
    expect(scopeError(scope)).toBeNull();
  });

  it.each(invalid)('rejects %j with a message naming it', (scope) => {
    expect(SCOPE.test(scope)).toBe(false);
    expect(scopeError(scope)).toBe(`"${scope}" is not a scope of the form product:action or product:*`);
  });
});

describe('BOUNDARY and boundaryError', () => {
  const segment = (n: number) => `a:${'x'.repeat(n)}`;
  // Three 130-character segments, their slashes and a last one of 119: exactly 512 characters.
  const longest = [segment(128), segment(128), segment(128), segment(117)].join('/');

  const valid = [
    'site:plant-7',
    'site:plant-7/asset-group:pumps',
    'region:EU-West_1/site:plant.7/line:A~2',
    'a:b/c:d/e:f/g:h',
    `${'t'.repeat(64)}:${'V'.repeat(128)}`,
  ];
  const invalid = [
    '',
    'plant-7',
    'site:plant-7/',
    '/site:plant-7',
    'site:',
    ':plant-7',
    'Site:plant-7',
    'site:plant 7',
    'site:plant-7//asset-group:pumps',
    'site:plant-7/asset-group',
    'site:plant:7',
    'site:plant-7/Asset:pumps',
    'site:plänt',
    `${'t'.repeat(65)}:v`,
    `site:${'v'.repeat(129)}`,
    // Dot-only types and values: the same grammar as a canonical resource (libs/keys matching.ts).
    'site:..',
    'site:.',
    'site:plant-7/asset:..',
    '..:x',
    '.:x',
    'site:plant-7/..:x',
    'site:plant-7/..',
    'site:plant-7/%2e%2e',
    'site:plant-7\\asset:1',
  ];

  it('has a 512-character longest example', () => {
    expect(longest).toHaveLength(LIMITS.boundaryLength);
  });

  it.each([...valid, longest])('accepts %j', (boundary) => {
    expect(BOUNDARY.test(boundary)).toBe(true);
    expect(boundaryError(boundary)).toBeNull();
  });

  it.each(invalid)('rejects %j', (boundary) => {
    expect(BOUNDARY.test(boundary)).toBe(false);
    expect(boundaryError(boundary)).toBe(
      `"${boundary}" is not a boundary of the form type:value[/type:value...]`,
    );
  });

  it('rejects a well-formed boundary over 512 characters by its length', () => {
    const tooLong = `${longest}x`;
    expect(BOUNDARY.test(tooLong)).toBe(true);
    expect(boundaryError(tooLong)).toBe('a boundary is at most 512 characters');
  });
});

describe('cidrError', () => {
  it.each([
    '10.20.0.0/16',
    '10.20.1.0/24',
    '0.0.0.0/0',
    '192.168.1.7/32',
    '10.0.0.128/25',
    '2001:db8::/32',
    '2001:db8:0:1::/64',
    '::/0',
    '::1/128',
    'fe80::/10',
    '::ffff:10.0.0.0/104',
    '1:2:3:4:5:6:7:8/128',
  ])('accepts %j', (cidr) => {
    expect(cidrError(cidr)).toBeNull();
  });

  it.each([
    ['missing prefix', '10.20.0.0'],
    ['empty prefix', '10.20.0.0/'],
    ['IPv6 without prefix', '2001:db8::'],
    ['negative prefix', '10.20.0.0/-1'],
    ['four-digit prefix', '10.20.0.0/0016'],
    ['two prefixes', '10.20.0.0/16/8'],
    ['short address', '10.20.0/16'],
    ['octet over 255', '256.0.0.0/8'],
    ['leading zero octet', '010.0.0.0/8'],
    ['two ::', '1::2::3/64'],
    ['IPv6 zone', 'fe80::%eth0/64'],
    ['hostname', 'example.com/24'],
    ['garbage', 'everywhere'],
    ['empty', ''],
    ['leading space', ' 10.20.0.0/16'],
    ['prefix only', '/16'],
    ['leading zero prefix', '10.0.0.0/08'],
    ['trailing space', '10.20.0.0/16 '],
  ])('rejects %s (%j) as not a CIDR', (_, cidr) => {
    expect(cidrError(cidr)).toBe(`"${cidr}" is not an IPv4 or IPv6 CIDR such as 10.20.0.0/16`);
  });

  it.each(['10.20.0.0/33', '0.0.0.0/999', '2001:db8::/129', '::/200'])(
    'rejects %j: prefix too long',
    (cidr) => {
      expect(cidrError(cidr)).toBe(`"${cidr}" has a prefix longer than the address`);
    },
  );

  it.each([
    ['10.20.1.0/16', 16],
    ['10.0.0.64/25', 25],
    ['1.2.3.4/0', 0],
    ['192.168.1.7/31', 31],
    ['2001:db8:1::/32', 32],
    ['::1/0', 0],
    ['::ffff:10.0.0.1/104', 104],
    ['1:2:3:4:5:6:7:8/112', 112],
  ])('rejects %j: address bits set beyond the prefix', (cidr, bits) => {
    expect(cidrError(cidr)).toBe(`"${cidr}" has address bits set beyond its /${bits} prefix`);
  });
});

describe('normalizedSet', () => {
  it('sorts and removes duplicates', () => {
    expect(normalizedSet(['b:x', 'a:y', 'b:x', 'a:*', 'c:z', 'a:y'])).toEqual(['a:*', 'a:y', 'b:x', 'c:z']);
  });

  it('answers a new array and leaves its input alone', () => {
    const input = ['z', 'a', 'z'];
    const out = normalizedSet(input);
    expect(out).toEqual(['a', 'z']);
    expect(input).toEqual(['z', 'a', 'z']);
    expect(normalizedSet([])).toEqual([]);
    const sorted = ['a', 'b'];
    expect(normalizedSet(sorted)).not.toBe(sorted);
  });

  it('makes the same set in any order and multiplicity compare equal', () => {
    expect(normalizedSet(['10.0.0.0/8', '::/0', '10.0.0.0/8'])).toEqual(
      normalizedSet(['::/0', '10.0.0.0/8']),
    );
  });
});
