import { isInstant } from './as-of';

describe('isInstant (asOf)', () => {
  it.each([
    '2026-03-01T09:00:00.000Z',
    '2026-03-01T09:00:00Z',
    '2026-03-01T09:00Z',
    '2026-03-01T10:00:00.000+01:00',
    '2026-03-01T09:00:00.123456Z',
    '2026-03-01',
    '2028-02-29',
    '2000-02-29T00:00:00Z',
    '0001-01-01T00:00:00Z',
  ])('takes %s', (value) => {
    expect(isInstant(value)).toBe(true);
  });

  it.each([
    ['a time without its zone', '2026-03-01T09:00:00'],
    ['30 February', '2026-02-30'],
    ['29 February of a common year', '2026-02-29'],
    ['29 February of a century that is not a leap year', '1900-02-29'],
    ['month 13', '2026-13-01'],
    ['month 0', '2026-00-10'],
    ['day 0', '2026-03-00'],
    ['24:00', '2026-03-01T24:00:00Z'],
    ['minute 60', '2026-03-01T09:60:00Z'],
    ['an offset of 24 hours', '2026-03-01T09:00:00+24:00'],
    ['a week date', '2026-W09-1'],
    ['an ordinal date', '2026-060'],
    ['epoch milliseconds', '1772355600000'],
    ['a word', 'yesterday'],
    ['an empty string', ''],
    ['a number', 1772355600000],
    ['an array', ['2026-03-01']],
  ])('refuses %s', (_name, value) => {
    expect(isInstant(value)).toBe(false);
  });
});
