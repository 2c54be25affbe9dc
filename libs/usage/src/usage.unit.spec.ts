import type { Verification } from '@keyward/keys';
import { UsageTally, cellField, minuteOf, parseCellField, parseKeyUseMember, keyUseMember } from './usage';
import { bucketOf, bucketsBetween, MAX_BUCKETS, usageWindow } from './usage.reader';

function verification(overrides: Partial<Verification> = {}): Verification {
  return {
    tenantId: 'acme',
    keyId: 'key_a',
    serviceAccountId: 'sa_1',
    code: 'ALLOWED',
    sourceIp: '10.0.0.1',
    system: 'zendesk',
    at: new Date('2026-03-01T09:00:30.500Z'),
    ...overrides,
  };
}

describe('UsageTally', () => {
  it('counts per minute, key, code, source ip and system', () => {
    const tally = new UsageTally();
    tally.add(verification());
    tally.add(verification({ at: new Date('2026-03-01T09:00:59.999Z') }));
    tally.add(verification({ at: new Date('2026-03-01T09:01:00.000Z') }));
    tally.add(verification({ code: 'INSUFFICIENT_SCOPE' }));
    tally.add(verification({ sourceIp: '10.0.0.2' }));
    tally.add(verification({ system: null }));
    const cells = [...tally.counts].map(([field, count]) => ({ ...parseCellField(field)!, count }));
    expect(cells).toEqual([
      expect.objectContaining({
        minute: '2026-03-01T09:00:00.000Z',
        code: 'ALLOWED',
        sourceIp: '10.0.0.1',
        system: 'zendesk',
        count: 2,
      }),
      expect.objectContaining({ minute: '2026-03-01T09:01:00.000Z', count: 1 }),
      expect.objectContaining({ code: 'INSUFFICIENT_SCOPE', count: 1 }),
      expect.objectContaining({ sourceIp: '10.0.0.2', count: 1 }),
      expect.objectContaining({ system: '', count: 1 }),
    ]);
  });

  it('counts unknown and malformed keys under the tenant with no key or account', () => {
    const tally = new UsageTally();
    tally.add(verification({ keyId: null, serviceAccountId: null, code: 'UNKNOWN' }));
    const [field] = tally.counts.keys();
    expect(parseCellField(field)).toEqual(
      expect.objectContaining({ tenantId: 'acme', keyId: '', serviceAccountId: '', code: 'UNKNOWN' }),
    );
    expect(tally.uses.size).toBe(0);
  });

  it("keeps each key's first and last allowed use; a refused verification is not a use", () => {
    const tally = new UsageTally();
    tally.add(verification({ at: new Date('2026-03-01T09:00:10Z') }));
    tally.add(verification({ at: new Date('2026-03-01T09:00:05Z') }));
    tally.add(verification({ at: new Date('2026-03-01T09:00:20Z') }));
    tally.add(verification({ at: new Date('2026-03-01T09:30:00Z'), code: 'REVOKED' }));
    expect([...tally.uses.values()]).toEqual([
      {
        tenantId: 'acme',
        keyId: 'key_a',
        serviceAccountId: 'sa_1',
        first: Date.parse('2026-03-01T09:00:05Z'),
        last: Date.parse('2026-03-01T09:00:20Z'),
      },
    ]);
  });

  it('merges another tally: counts add up, first and last widen', () => {
    const a = new UsageTally();
    const b = new UsageTally();
    a.add(verification({ at: new Date('2026-03-01T09:00:10Z') }));
    b.add(verification({ at: new Date('2026-03-01T09:00:40Z') }));
    b.add(verification({ keyId: 'key_b', at: new Date('2026-03-01T09:00:01Z') }));
    a.merge(b);
    expect([...a.counts.values()]).toEqual([2, 1]);
    expect(a.uses.get('key_a')).toEqual(
      expect.objectContaining({
        first: Date.parse('2026-03-01T09:00:10Z'),
        last: Date.parse('2026-03-01T09:00:40Z'),
      }),
    );
    expect(a.uses.get('key_b')).toBeDefined();
    expect(a.size).toBe(4);
    expect(a.empty).toBe(false);
    expect(new UsageTally().empty).toBe(true);
  });
});

describe('fields', () => {
  it('round-trip any text, separators and quotes included', () => {
    const cell = {
      minute: minuteOf(new Date('2026-03-01T09:00:30Z')),
      tenantId: 'acme',
      keyId: 'key_a',
      serviceAccountId: 'sa_1',
      code: 'ALLOWED',
      sourceIp: '2001:db8::1',
      system: 'a|b,"c"\t\\d ☃',
    };
    expect(parseCellField(cellField(cell))).toEqual(cell);
    const use = { tenantId: 't', keyId: 'k"', serviceAccountId: 's,' };
    expect(parseKeyUseMember(keyUseMember(use))).toEqual(use);
  });

  it.each(['', 'nope', '[]', '["x","a","b","c","d","e","f"]', '[1,2,3,4,5,6,7]', '{"a":1}'])(
    'refuses a field no instance wrote: %j',
    (field) => {
      expect(parseCellField(field)).toBeNull();
    },
  );

  it('refuses a member no instance wrote', () => {
    expect(parseKeyUseMember('["a","b"]')).toBeNull();
    expect(parseKeyUseMember('{')).toBeNull();
  });
});

describe('buckets', () => {
  it('truncates to the UTC minute, hour and day', () => {
    const at = new Date('2026-03-01T09:47:31.250Z');
    expect(minuteOf(at)).toBe('2026-03-01T09:47:00.000Z');
    expect(bucketOf(at, 'minute').toISOString()).toBe('2026-03-01T09:47:00.000Z');
    expect(bucketOf(at, 'hour').toISOString()).toBe('2026-03-01T09:00:00.000Z');
    expect(bucketOf(at, 'day').toISOString()).toBe('2026-03-01T00:00:00.000Z');
  });

  it('covers from (inclusive) to to (exclusive) with whole buckets', () => {
    expect(
      bucketsBetween(new Date('2026-03-01T09:10:00Z'), new Date('2026-03-01T12:00:00Z'), 'hour').map((b) =>
        b.toISOString(),
      ),
    ).toEqual(['2026-03-01T09:00:00.000Z', '2026-03-01T10:00:00.000Z', '2026-03-01T11:00:00.000Z']);
    expect(
      bucketsBetween(new Date('2026-03-01T09:10:00Z'), new Date('2026-03-01T12:00:00.001Z'), 'hour'),
    ).toHaveLength(4);
    expect(
      bucketsBetween(new Date('2026-03-01T09:10:00Z'), new Date('2026-03-01T09:10:01Z'), 'day'),
    ).toHaveLength(1);
  });

  it('refuses an empty window and one of more than MAX_BUCKETS buckets', () => {
    const from = new Date('2026-03-01T00:00:00Z');
    expect(() => bucketsBetween(from, from, 'minute')).toThrow('from must be before to');
    expect(() => bucketsBetween(from, new Date(from.getTime() - 1), 'minute')).toThrow(
      'from must be before to',
    );
    expect(bucketsBetween(from, new Date(from.getTime() + MAX_BUCKETS * 60_000), 'minute')).toHaveLength(
      MAX_BUCKETS,
    );
    expect(() => bucketsBetween(from, new Date(from.getTime() + MAX_BUCKETS * 60_000 + 1), 'minute')).toThrow(
      /1441 minute buckets; at most 1440/,
    );
  });
});

describe('usageWindow', () => {
  const now = new Date('2026-03-01T09:47:31Z');

  it('ends with the bucket in progress and spans a default number of buckets', () => {
    expect(usageWindow(now, 'hour')).toEqual({
      from: new Date('2026-02-28T10:00:00Z'),
      to: new Date('2026-03-01T10:00:00Z'),
    });
    expect(usageWindow(now, 'minute').from).toEqual(new Date('2026-03-01T08:48:00Z'));
    expect(usageWindow(now, 'day').from).toEqual(new Date('2026-01-31T00:00:00Z'));
  });

  it('keeps what the caller gave', () => {
    const from = new Date('2026-03-01T00:00:00Z');
    const to = new Date('2026-03-01T05:00:00Z');
    expect(usageWindow(now, 'hour', from, to)).toEqual({ from, to });
    expect(usageWindow(now, 'hour', undefined, to).from).toEqual(new Date('2026-02-28T05:00:00Z'));
  });
});
