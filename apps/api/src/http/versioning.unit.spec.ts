import { ValidationFailed } from '@keyward/core';
import { expectedVersionFrom } from './versioning';

describe('expectedVersionFrom (If-Match)', () => {
  it.each([undefined, '*', ' * '])('expects no version for %j', (header) => {
    expect(expectedVersionFrom(header)).toBeUndefined();
  });

  it.each([
    ['"3"', 3],
    ['W/"3"', 3],
    ['3', 3],
    [' "3" ', 3],
    ['"0"', 0],
    ['"42"', 42],
    ['"007"', 7],
    ['"999999999"', 999_999_999],
  ])('reads %j as version %i', (header, version) => {
    expect(expectedVersionFrom(header)).toBe(version);
  });

  it.each([
    'abc',
    '"-1"',
    '-1',
    '"3',
    '3"',
    'W/3',
    'w/"3"',
    '',
    '   ',
    '""',
    '"3.0"',
    '"3", "4"',
    '"1234567890"',
    '"abc"',
  ])('rejects %j with ValidationFailed on If-Match', (header) => {
    let error: unknown;
    try {
      expectedVersionFrom(header);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationFailed);
    expect((error as ValidationFailed).errors).toEqual([
      { field: 'If-Match', message: 'must be a version such as "3"' },
    ]);
  });
});
