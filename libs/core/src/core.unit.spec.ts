import {
  Conflict,
  DomainError,
  ID_PREFIX,
  ManualClock,
  ValidationFailed,
  canonicalJson,
  decodeCursor,
  encodeCursor,
  isId,
  isUnavailableError,
  isUniqueViolation,
  newId,
  randomBase62,
  systemClock,
  toPage,
} from './index';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('canonicalJson', () => {
  it('sorts keys at every depth, so key order never changes the text', () => {
    const a = { b: 1, a: { d: [{ z: 1, y: { q: 2, p: 3 } }], c: 'x' } };
    const b = { a: { c: 'x', d: [{ y: { p: 3, q: 2 }, z: 1 }] }, b: 1 };
    expect(canonicalJson(a)).toBe('{"a":{"c":"x","d":[{"y":{"p":3,"q":2},"z":1}]},"b":1}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });

  it('keeps the order of arrays', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
    expect(canonicalJson({ list: ['b', 'a'] })).not.toBe(canonicalJson({ list: ['a', 'b'] }));
  });

  it('drops undefined properties at any depth and keeps null', () => {
    expect(canonicalJson({ a: undefined, b: 1, c: { d: undefined, e: null } })).toBe(
      '{"b":1,"c":{"e":null}}',
    );
  });

  it('writes dates as ISO strings and primitives as JSON does', () => {
    expect(canonicalJson({ at: new Date('2026-01-02T03:04:05.006Z') })).toBe(
      '{"at":"2026-01-02T03:04:05.006Z"}',
    );
    expect(canonicalJson('x')).toBe('"x"');
    expect(canonicalJson(42)).toBe('42');
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(true)).toBe('true');
  });

  it('leaves its input alone', () => {
    const input = { b: 1, a: 2 };
    canonicalJson(input);
    expect(Object.keys(input)).toEqual(['b', 'a']);
  });
});

describe('cursor', () => {
  const base64url = (text: string) => Buffer.from(text).toString('base64url');

  it('round-trips createdAt and id, and is opaque', () => {
    const cursor = { createdAt: '2026-01-02T03:04:05.006Z', id: 'sa_0123456789abcdefghij' };
    const text = encodeCursor(cursor);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(text).not.toContain('sa_');
    expect(decodeCursor(text)).toEqual(cursor);
  });

  it.each([
    ['empty', ''],
    ['not base64', '!!!!'],
    ['not JSON', base64url('not json')],
    ['an object', base64url('{"createdAt":"2026-01-01T00:00:00.000Z","id":"x"}')],
    ['null', base64url('null')],
    ['a number', base64url('5')],
    ['a string', base64url('"12"')],
    ['numbers', base64url('[1,2]')],
    ['no date', base64url('["not a date","sa_x"]')],
    ['a loose date', base64url('["March 7","sa_x"]')],
    ['a bare year', base64url('["1","sa_x"]')],
    ['a date without time', base64url('["2026-01-01","sa_x"]')],
    ['an id over 64 characters', base64url(JSON.stringify(['2026-01-01T00:00:00.000Z', 'x'.repeat(65)]))],
    ['an extra element', base64url(JSON.stringify(['2026-01-01T00:00:00.000Z', 'sa_x', 'more']))],
    ['one element', base64url(JSON.stringify(['2026-01-01T00:00:00.000Z']))],
  ])('rejects %s with ValidationFailed on the cursor field', (_, text) => {
    let error: unknown;
    try {
      decodeCursor(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationFailed);
    expect((error as ValidationFailed).errors).toEqual([
      { field: 'cursor', message: 'is not a cursor this API returned' },
    ]);
  });

  describe('toPage', () => {
    const rows = Array.from({ length: 4 }, (_, i) => ({
      id: `sa_${String(i).padStart(20, '0')}`,
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    }));

    it('with limit + 1 rows answers limit items and a cursor after the last', () => {
      const page = toPage(rows, 3);
      expect(page.items).toEqual(rows.slice(0, 3));
      expect(page.nextCursor).not.toBeNull();
      expect(decodeCursor(page.nextCursor as string)).toEqual({
        createdAt: '2026-01-01T00:00:02.000Z',
        id: 'sa_00000000000000000002',
      });
    });

    it('with exactly limit rows, or fewer, answers no cursor', () => {
      expect(toPage(rows.slice(0, 3), 3)).toEqual({ items: rows.slice(0, 3), nextCursor: null });
      expect(toPage(rows.slice(0, 1), 3)).toEqual({ items: rows.slice(0, 1), nextCursor: null });
      expect(toPage([], 3)).toEqual({ items: [], nextCursor: null });
    });
  });
});

describe('randomBase62', () => {
  it.each([0, 1, 20, 43, 1000])('answers %i characters of the base62 alphabet', (length) => {
    const text = randomBase62(length);
    expect(text).toHaveLength(length);
    expect(text).toMatch(/^[0-9A-Za-z]*$/);
  });

  it('draws every character about equally often', () => {
    // 62 × 2000 draws: each count is about 2000 ± 44. The bounds are ~7 standard deviations out
    // (and the chi-square bound further), so a fair generator cannot plausibly fail, while a plain
    // `byte % 62` (the first 8 characters ~25% likelier) lands far outside them.
    const draws = 62 * 2000;
    const counts = new Map<string, number>();
    for (const char of randomBase62(draws)) counts.set(char, (counts.get(char) ?? 0) + 1);
    expect([...counts.keys()].sort().join('')).toBe([...BASE62].sort().join(''));
    const values = [...counts.values()];
    expect(Math.min(...values)).toBeGreaterThan(1700);
    expect(Math.max(...values)).toBeLessThan(2300);
    const chiSquare = values.reduce((sum, n) => sum + (n - 2000) ** 2 / 2000, 0);
    expect(chiSquare).toBeLessThan(200); // 61 degrees of freedom: mean 61, sd 11
  });

  it('answers a different string each time', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => randomBase62(20)));
    expect(seen.size).toBe(1000);
  });
});

describe('ids', () => {
  it.each(Object.values(ID_PREFIX))(
    'newId(%j) is the prefix and 20 base62 characters, and isId knows it',
    (prefix) => {
      const id = newId(prefix);
      expect(id.startsWith(prefix)).toBe(true);
      expect(id.slice(prefix.length)).toMatch(/^[0-9A-Za-z]{20}$/);
      expect(isId(id, prefix)).toBe(true);
    },
  );

  it('makes distinct ids', () => {
    expect(newId('sa_')).not.toBe(newId('sa_'));
  });

  it.each([
    ['another kind', 'op_0123456789abcdefghij', 'sa_'],
    ['19 characters', 'sa_0123456789abcdefghi', 'sa_'],
    ['21 characters', 'sa_0123456789abcdefghijk', 'sa_'],
    ['a character outside base62', 'sa_0123456789abcdefgh-', 'sa_'],
    ['SQL', "sa_0123456789abcdef'--", 'sa_'],
    ['no prefix', '0123456789abcdefghij', 'sa_'],
    ['empty', '', 'sa_'],
    ['trailing newline', 'sa_0123456789abcdefghij\n', 'sa_'],
  ])('isId rejects %s', (_, value, prefix) => {
    expect(isId(value, prefix)).toBe(false);
  });
});

describe('ManualClock', () => {
  it('starts at 2026-01-01 unless told otherwise', () => {
    expect(new ManualClock().now().toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(new ManualClock('2030-05-06T07:08:09.010Z').now().toISOString()).toBe('2030-05-06T07:08:09.010Z');
    expect(new ManualClock(new Date('2031-01-01T00:00:00.000Z')).now().toISOString()).toBe(
      '2031-01-01T00:00:00.000Z',
    );
  });

  it('moves only when set or advanced', () => {
    const clock = new ManualClock();
    expect(clock.now().getTime()).toBe(clock.now().getTime());
    clock.advance(90_000);
    expect(clock.now().toISOString()).toBe('2026-01-01T00:01:30.000Z');
    clock.set('2027-03-04T05:06:07.008Z');
    expect(clock.now().toISOString()).toBe('2027-03-04T05:06:07.008Z');
    clock.set(new Date('2025-12-31T23:59:59.999Z'));
    clock.advance(1);
    expect(clock.now().toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('hands out copies: changing an answer does not move the clock', () => {
    const clock = new ManualClock();
    clock.now().setUTCFullYear(1999);
    expect(clock.now().toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});

describe('systemClock', () => {
  it('tells the current time', () => {
    const before = Date.now();
    const now = systemClock.now().getTime();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });
});

describe('isUnavailableError', () => {
  const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

  it.each([
    ['ECONNREFUSED', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['ECONNRESET', withCode('ECONNRESET')],
    ['ETIMEDOUT', withCode('ETIMEDOUT')],
    ['ENOTFOUND', withCode('ENOTFOUND')],
    ['SQLSTATE 08006 (connection failure)', withCode('08006')],
    ['SQLSTATE 08001', withCode('08001')],
    [
      'SQLSTATE 57P01 (admin shutdown)',
      withCode('57P01', 'terminating connection due to administrator command'),
    ],
    ['SQLSTATE 57P03 (cannot connect now)', withCode('57P03')],
    ['SQLSTATE 53300 (too many connections)', withCode('53300')],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['a closed Redis connection', new Error('Connection is closed.')],
    ['Redis out of retries', Object.assign(new Error('retries'), { name: 'MaxRetriesPerRequestError' })],
  ])('is true for %s', (_, error) => {
    expect(isUnavailableError(error)).toBe(true);
  });

  it.each([
    ['a unique violation 23505', withCode('23505', 'duplicate key value violates unique constraint')],
    ['a syntax error 42601', withCode('42601')],
    ['SQLSTATE 57014 (query cancelled)', withCode('57014')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a domain error', new Conflict('stale')],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'ECONNREFUSED'],
  ])('is false for %s', (_, error) => {
    expect(isUnavailableError(error)).toBe(false);
  });
});

describe('isUniqueViolation', () => {
  const violation = Object.assign(new Error('duplicate'), { code: '23505', constraint: 'accounts_name_key' });

  it('is true for SQLSTATE 23505, with or without a matching constraint', () => {
    expect(isUniqueViolation(violation)).toBe(true);
    expect(isUniqueViolation(violation, 'accounts_name_key')).toBe(true);
  });

  it('is false for another constraint, another code or no error', () => {
    expect(isUniqueViolation(violation, 'other_key')).toBe(false);
    expect(isUniqueViolation(Object.assign(new Error('fk'), { code: '23503' }))).toBe(false);
    expect(isUniqueViolation(new TypeError('x'))).toBe(false);
    expect(isUniqueViolation(null)).toBe(false);
    expect(isUniqueViolation(undefined)).toBe(false);
  });
});

describe('domain errors', () => {
  it('carry their class name, code and details', () => {
    const failed = new ValidationFailed('bad', [{ field: 'name', message: 'short' }]);
    expect(failed).toBeInstanceOf(DomainError);
    expect(failed.name).toBe('ValidationFailed');
    expect(failed.code).toBe('VALIDATION_FAILED');
    expect(failed.errors).toEqual([{ field: 'name', message: 'short' }]);
    expect(new ValidationFailed('bad').errors).toEqual([]);
    const conflict = new Conflict('stale', { expectedVersion: 1, actualVersion: 2 });
    expect([conflict.name, conflict.code, conflict.versions]).toEqual([
      'Conflict',
      'CONFLICT',
      { expectedVersion: 1, actualVersion: 2 },
    ]);
  });
});

describe('cursor ids', () => {
  it('refuses a cursor whose id is not one of ours (it would reach SQL)', () => {
    const forged = Buffer.from(JSON.stringify(['2026-01-01T00:00:00.000Z', 'key_\u0000'])).toString(
      'base64url',
    );
    expect(() => decodeCursor(forged)).toThrow(ValidationFailed);
  });
});
