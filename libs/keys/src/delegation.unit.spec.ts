import { Forbidden } from '@keyward/core';
import { assertWithinReach, cidrWithin, reachBeyond, reachOfKey, type Reach } from './delegation';

/** A staging pipeline's key: keyward:admin, tickets:*, bounded to plant 7, from 10.20.0.0/16. */
const holder: Reach = reachOfKey(
  {
    environment: 'staging',
    scopes: ['keyward:admin', 'tickets:*', 'summaries:draft'],
    boundaries: [],
    allowedCidrs: ['10.20.0.0/16'],
    expiresAt: '2026-06-01T00:00:00.000Z',
    graceEndsAt: null,
  },
  { boundaries: ['site:plant-7'], allowedCidrs: [] },
);

/** What the holder could make without reaching beyond itself. */
const within: Reach = {
  environment: 'staging',
  scopes: ['tickets:read', 'summaries:draft'],
  boundaries: ['site:plant-7/asset-group:pumps'],
  cidrs: [['10.20.1.0/24'], []],
  endsAt: new Date('2026-05-01T00:00:00.000Z'),
};

const fields = (wanted: Partial<Reach>) => reachBeyond(holder, { ...within, ...wanted }).map((e) => e.field);

describe('reachOfKey', () => {
  it('takes the account boundaries when the key has none, both address lists, and the earlier end', () => {
    expect(holder).toEqual({
      environment: 'staging',
      scopes: ['keyward:admin', 'tickets:*', 'summaries:draft'],
      boundaries: ['site:plant-7'],
      cidrs: [[], ['10.20.0.0/16']],
      endsAt: new Date('2026-06-01T00:00:00.000Z'),
    });
    const rotating = reachOfKey(
      {
        environment: 'production',
        scopes: [],
        boundaries: ['site:plant-1'],
        allowedCidrs: [],
        expiresAt: '2026-06-01T00:00:00.000Z',
        graceEndsAt: '2026-03-02T00:00:00.000Z',
      },
      { boundaries: ['site:plant-7'], allowedCidrs: ['10.0.0.0/8'] },
    );
    expect(rotating.boundaries).toEqual(['site:plant-1']);
    expect(rotating.endsAt).toEqual(new Date('2026-03-02T00:00:00.000Z'));
  });
});

describe('reachBeyond: what a key may hand on', () => {
  it('nothing beyond for a credential within the key in every way', () => {
    expect(reachBeyond(holder, within)).toEqual([]);
    // Exactly as far as the key itself, less its keyward scope, is still within.
    expect(
      fields({ scopes: ['tickets:*'], boundaries: ['site:plant-7'], cidrs: [['10.20.0.0/16']] }),
    ).toEqual([]);
    // An account never expires on its own: no end to compare.
    expect(fields({ endsAt: null })).toEqual([]);
  });

  it.each([
    ['keyward:admin', ['keyward:admin']],
    ['keyward:*', ['keyward:*']],
    ['keyward:read among others', ['tickets:read', 'keyward:read']],
    ['keyward:approve', ['keyward:approve']],
    ['keyward:verify', ['keyward:verify']],
  ])('never a governance scope: %s', (_, scopes) => {
    const errors = reachBeyond(holder, { ...within, scopes });
    expect(errors).toEqual([expect.objectContaining({ field: 'scopes' })]);
    expect(errors[0].message).toContain('given only by a person');
  });

  it('no scope the key does not cover itself, even one its keyward:admin would "allow"', () => {
    expect(fields({ scopes: ['payments:write'] })).toEqual(['scopes']);
    expect(fields({ scopes: ['summaries:*'] })).toEqual(['scopes']); // it holds summaries:draft only
    expect(fields({ scopes: ['tickets:write', 'tickets:*'] })).toEqual([]); // tickets:* covers both
    const bare = { ...holder, scopes: ['keyward:*'] };
    expect(reachBeyond(bare, { ...within, scopes: ['tickets:read'] }).map((e) => e.field)).toEqual([
      'scopes',
    ]);
    expect(reachBeyond(bare, { ...within, scopes: [] })).toEqual([]);
  });

  it.each(['production', 'development'] as const)('no other environment: %s', (environment) => {
    expect(fields({ environment })).toEqual(['environment']);
  });

  it('no resource outside its boundaries, and never unbounded when it is bounded', () => {
    expect(fields({ boundaries: ['site:plant-70'] })).toEqual(['boundaries']);
    expect(fields({ boundaries: ['site:plant-7/asset:1', 'site:plant-8'] })).toEqual(['boundaries']);
    expect(fields({ boundaries: [] })).toEqual(['boundaries']);
    const unbounded = { ...holder, boundaries: [] };
    expect(reachBeyond(unbounded, { ...within, boundaries: [] })).toEqual([]);
  });

  it('no address it may not come from: every list it is held to needs a list as narrow', () => {
    expect(fields({ cidrs: [[], []] })).toEqual(['allowedCidrs']);
    expect(fields({ cidrs: [['10.21.0.0/24']] })).toEqual(['allowedCidrs']);
    expect(fields({ cidrs: [['10.0.0.0/8']] })).toEqual(['allowedCidrs']);
    expect(fields({ cidrs: [['10.20.1.0/24', '192.168.0.0/24']] })).toEqual(['allowedCidrs']);
    // Either of the new key's lists may be the narrow one (the account's or the key's own).
    expect(fields({ cidrs: [[], ['10.20.9.0/24']] })).toEqual([]);
    expect(fields({ cidrs: [['10.20.0.0/16'], ['0.0.0.0/0']] })).toEqual([]);
    const twoLists = { ...holder, cidrs: [['10.0.0.0/8'], ['10.20.0.0/16']] };
    expect(reachBeyond(twoLists, { ...within, cidrs: [['10.20.3.0/24']] })).toEqual([]);
    expect(reachBeyond(twoLists, { ...within, cidrs: [['10.30.3.0/24']] }).map((e) => e.field)).toEqual([
      'allowedCidrs',
    ]);
  });

  it('never outlives the key making it', () => {
    expect(fields({ endsAt: new Date('2026-06-01T00:00:00.000Z') })).toEqual([]);
    expect(fields({ endsAt: new Date('2026-06-01T00:00:00.001Z') })).toEqual(['expiresInDays']);
  });

  it('names every way at once', () => {
    expect(
      fields({
        environment: 'production',
        scopes: ['keyward:admin', 'payments:write'],
        boundaries: [],
        cidrs: [[]],
        endsAt: new Date('2027-01-01T00:00:00.000Z'),
      }),
    ).toEqual(['environment', 'scopes', 'scopes', 'boundaries', 'allowedCidrs', 'expiresInDays']);
  });
});

describe('assertWithinReach', () => {
  it('passes within, and refuses beyond with Forbidden naming what and how', () => {
    expect(() => assertWithinReach(holder, within, 'a key')).not.toThrow();
    let refusal: unknown;
    try {
      assertWithinReach(holder, { ...within, scopes: ['keyward:admin'] }, 'a key');
    } catch (e) {
      refusal = e;
    }
    expect(refusal).toBeInstanceOf(Forbidden);
    expect((refusal as Error).message).toMatch(
      /^a service-account key may make a key only within its own reach/,
    );
    expect((refusal as Error).message).toContain('keyward:admin');
  });
});

describe('cidrWithin', () => {
  it.each([
    ['10.20.1.0/24', '10.20.0.0/16', true],
    ['10.20.0.0/16', '10.20.0.0/16', true],
    ['10.20.1.7/32', '10.20.0.0/16', true],
    ['10.0.0.0/8', '10.20.0.0/16', false],
    ['10.21.0.0/24', '10.20.0.0/16', false],
    ['0.0.0.0/0', '10.20.0.0/16', false],
    ['10.20.1.0/24', '0.0.0.0/0', true],
    ['2001:db8:1::/48', '2001:db8::/32', true],
    ['2001:db9::/48', '2001:db8::/32', false],
    ['::ffff:10.20.1.0/120', '10.20.0.0/16', false], // another family: refused, the safe side
    ['10.20.1.0/24', '::/0', false],
  ])('%s within %s: %s', (inner, outer, expected) => {
    expect(cidrWithin(inner, outer)).toBe(expected);
  });
});
