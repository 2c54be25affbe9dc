import { boundariesWiden, ceilingWidenings, cidrsWiden } from './ceiling';

describe('boundariesWiden', () => {
  it.each<[string[], string[], boolean]>([
    [[], [], false],
    [[], ['site:plant-7'], false], // unbounded to bounded narrows
    [['site:plant-7'], ['site:plant-7'], false],
    [['site:plant-7'], ['site:plant-7/asset:1'], false],
    [['site:plant-7', 'site:plant-8'], ['site:plant-8'], false],
    [['site:plant-7'], [], true], // bounded to unbounded
    [['site:plant-7'], ['site:plant-70'], true],
    [['site:plant-7/asset:1'], ['site:plant-7'], true],
    [['site:plant-7'], ['site:plant-7', 'site:plant-8'], true],
  ])('%j to %j: %s', (current, next, widens) => {
    expect(boundariesWiden(current, next)).toBe(widens);
  });
});

describe('cidrsWiden', () => {
  it.each<[string[], string[], boolean]>([
    [[], ['10.0.0.0/8'], false],
    [['10.0.0.0/8'], ['10.20.0.0/16'], false],
    [['10.0.0.0/8', '192.168.0.0/16'], ['192.168.1.0/24'], false],
    [['10.0.0.0/8'], [], true],
    [['10.20.0.0/16'], ['10.0.0.0/8'], true],
    [['10.20.0.0/16'], ['10.20.0.0/16', '172.16.0.0/12'], true],
  ])('%j to %j: %s', (current, next, widens) => {
    expect(cidrsWiden(current, next)).toBe(widens);
  });
});

describe('ceilingWidenings', () => {
  const state = { boundaries: ['site:plant-7'], allowedCidrs: ['10.20.0.0/16'] };

  it('names each widened field, and nothing for fields left out or narrowed', () => {
    expect(ceilingWidenings(state, {})).toEqual([]);
    expect(
      ceilingWidenings(state, { boundaries: ['site:plant-7/asset:1'], allowedCidrs: ['10.20.1.0/24'] }),
    ).toEqual([]);
    expect(ceilingWidenings(state, { boundaries: [] })).toEqual(['boundaries']);
    expect(ceilingWidenings(state, { allowedCidrs: [] })).toEqual(['allowedCidrs']);
    expect(ceilingWidenings(state, { boundaries: ['site:plant-8'], allowedCidrs: ['0.0.0.0/0'] })).toEqual([
      'boundaries',
      'allowedCidrs',
    ]);
  });
});
