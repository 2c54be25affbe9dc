import {
  DENIAL_BURST_MIN_DENIALS,
  DETAIL_LIST_MAX,
  MANY_SOURCES_MIN,
  SCOPE_CREEP_MIN_DENIALS,
  VOLUME_BASELINE_MIN_ACTIVE_MINUTES,
  VOLUME_BASELINE_MINUTES,
  VOLUME_SPIKE_FACTOR,
  VOLUME_SPIKE_MIN_CALLS,
  denialRaises,
  manySourcesRaise,
  newSourceRaise,
  volumeSpikeRaise,
  type CodeCalls,
  type KeyMinuteCalls,
} from './usage-detectors';

/** The usage rules alone: what one key did in one minute, and the signal (if any) it raises. */
const minute = new Date('2026-03-01T09:04:00.000Z');
const key = { tenantId: 't1', serviceAccountId: 'sa_1', keyId: 'key_1', minute };

const calls = (n: number, sources: string[] = [], systems: string[] = []): CodeCalls => ({
  calls: n,
  sources,
  systems,
});
const km = (byCode: KeyMinuteCalls['byCode']): KeyMinuteCalls => ({ ...key, byCode });
const types = (byCode: KeyMinuteCalls['byCode']) =>
  denialRaises(km(byCode))
    .map((r) => r.type)
    .sort();

describe('denialRaises', () => {
  it('raises REVOKED_KEY_USED, EXPIRED_KEY_USED and ENVIRONMENT_MISMATCH on a single refusal, on the key', () => {
    const raises = denialRaises(
      km({
        ALLOWED: calls(50),
        REVOKED: calls(1, ['10.0.0.9'], ['billing']),
        EXPIRED: calls(2, ['10.0.0.8']),
        ENVIRONMENT_MISMATCH: calls(1),
      }),
    );
    expect(raises.map((r) => r.type).sort()).toEqual([
      'ENVIRONMENT_MISMATCH',
      'EXPIRED_KEY_USED',
      'REVOKED_KEY_USED',
    ]);
    const revoked = raises.find((r) => r.type === 'REVOKED_KEY_USED')!;
    expect(revoked).toEqual({
      tenantId: 't1',
      type: 'REVOKED_KEY_USED',
      serviceAccountId: 'sa_1',
      keyId: 'key_1',
      detail: { minute: '2026-03-01T09:04:00.000Z', denials: 1, sources: ['10.0.0.9'], systems: ['billing'] },
    });
    expect(raises.find((r) => r.type === 'EXPIRED_KEY_USED')!.detail).toEqual(
      expect.objectContaining({ denials: 2, sources: ['10.0.0.8'] }),
    );
  });

  it('raises nothing for allowed calls and ordinary refusals', () => {
    expect(types({ ALLOWED: calls(1000) })).toEqual([]);
    expect(types({ ALLOWED: calls(10), IP_NOT_ALLOWED: calls(3), RATE_LIMITED: calls(4) })).toEqual([]);
  });

  it('raises SCOPE_CREEP at the threshold of scope and boundary refusals together, not one below', () => {
    expect(SCOPE_CREEP_MIN_DENIALS).toBe(5);
    expect(types({ INSUFFICIENT_SCOPE: calls(SCOPE_CREEP_MIN_DENIALS - 1) })).toEqual([]);
    expect(types({ INSUFFICIENT_SCOPE: calls(2), OUT_OF_BOUNDARY: calls(2) })).toEqual([]);
    const raises = denialRaises(
      km({
        ALLOWED: calls(100),
        INSUFFICIENT_SCOPE: calls(3, ['10.0.0.2']),
        OUT_OF_BOUNDARY: calls(2, ['10.0.0.1']),
      }),
    );
    expect(raises).toEqual([
      expect.objectContaining({
        type: 'SCOPE_CREEP',
        detail: {
          minute: '2026-03-01T09:04:00.000Z',
          insufficientScope: 3,
          outOfBoundary: 2,
          sources: ['10.0.0.1', '10.0.0.2'],
          systems: [],
        },
      }),
    ]);
  });

  it('raises DENIAL_BURST at the threshold when refusals are at least half of the calls', () => {
    expect(DENIAL_BURST_MIN_DENIALS).toBe(20);
    // Below the count: nothing, however large the share.
    expect(types({ IP_NOT_ALLOWED: calls(19) })).toEqual([]);
    // Enough refusals but under half the calls: a busy key with a client bug.
    expect(types({ ALLOWED: calls(21), IP_NOT_ALLOWED: calls(20) })).toEqual([]);
    // Exactly half.
    const raises = denialRaises(
      km({
        ALLOWED: calls(20),
        IP_NOT_ALLOWED: calls(12, ['10.0.0.7']),
        RATE_LIMITED: calls(8, ['10.0.0.6']),
      }),
    );
    expect(raises).toEqual([
      expect.objectContaining({
        type: 'DENIAL_BURST',
        keyId: 'key_1',
        detail: {
          minute: '2026-03-01T09:04:00.000Z',
          denials: 20,
          calls: 40,
          byCode: { IP_NOT_ALLOWED: 12, RATE_LIMITED: 8 },
          sources: ['10.0.0.6', '10.0.0.7'],
          systems: [],
        },
      }),
    ]);
  });

  it('raises several types for one key-minute when several rules hold', () => {
    expect(types({ REVOKED: calls(30) })).toEqual(['DENIAL_BURST', 'REVOKED_KEY_USED']);
  });

  it('names at most DETAIL_LIST_MAX sources', () => {
    const many = Array.from({ length: 30 }, (_, i) => `10.0.1.${i}`);
    const [raise] = denialRaises(km({ REVOKED: calls(1, many.slice(0, 15)), EXPIRED: calls(0) }));
    expect((raise.detail.sources as string[]).length).toBe(DETAIL_LIST_MAX);
  });
});

describe('volumeSpikeRaise', () => {
  // A baseline of 20 calls a minute on average over the day: a spike is 200 or more.
  const baseline = { baselineAllowed: 20 * VOLUME_BASELINE_MINUTES, baselineActiveMinutes: 600 };

  it('raises at the factor over the average minute of the day before', () => {
    expect(VOLUME_SPIKE_FACTOR).toBe(10);
    const raise = volumeSpikeRaise({ ...key, allowed: 200, ...baseline });
    expect(raise).toEqual({
      tenantId: 't1',
      type: 'VOLUME_SPIKE',
      serviceAccountId: 'sa_1',
      keyId: 'key_1',
      detail: {
        minute: '2026-03-01T09:04:00.000Z',
        calls: 200,
        baselinePerMinute: 20,
        baselineActiveMinutes: 600,
      },
    });
    expect(volumeSpikeRaise({ ...key, allowed: 199, ...baseline })).toBeNull();
  });

  it('needs the minimum calls, whatever the baseline', () => {
    expect(VOLUME_SPIKE_MIN_CALLS).toBe(100);
    const quiet = { baselineAllowed: VOLUME_BASELINE_MIN_ACTIVE_MINUTES, baselineActiveMinutes: 60 };
    expect(volumeSpikeRaise({ ...key, allowed: VOLUME_SPIKE_MIN_CALLS - 1, ...quiet })).toBeNull();
    expect(volumeSpikeRaise({ ...key, allowed: VOLUME_SPIKE_MIN_CALLS, ...quiet })?.type).toBe(
      'VOLUME_SPIKE',
    );
  });

  it('needs a baseline: a key used in too few minutes of the day before raises nothing', () => {
    const thin = { baselineAllowed: 10, baselineActiveMinutes: VOLUME_BASELINE_MIN_ACTIVE_MINUTES - 1 };
    expect(volumeSpikeRaise({ ...key, allowed: 10_000, ...thin })).toBeNull();
    expect(
      volumeSpikeRaise({
        ...key,
        allowed: 10_000,
        ...thin,
        baselineActiveMinutes: VOLUME_BASELINE_MIN_ACTIVE_MINUTES,
      })?.type,
    ).toBe('VOLUME_SPIKE');
  });
});

describe('newSourceRaise', () => {
  it('raises for sources new to a key with a history, naming them', () => {
    const raise = newSourceRaise({
      ...key,
      hasHistory: true,
      newSources: 2,
      calls: 4,
      sample: ['10.0.0.9', '10.0.0.10'],
    });
    expect(raise).toEqual({
      tenantId: 't1',
      type: 'NEW_SOURCE',
      serviceAccountId: 'sa_1',
      keyId: 'key_1',
      detail: {
        minute: '2026-03-01T09:04:00.000Z',
        sources: ['10.0.0.10', '10.0.0.9'],
        newSources: 2,
        calls: 4,
      },
    });
  });

  it('raises nothing for a key without history, or with no new source', () => {
    const one = { newSources: 1, calls: 3, sample: ['10.0.0.9'] };
    expect(newSourceRaise({ ...key, hasHistory: false, ...one })).toBeNull();
    expect(newSourceRaise({ ...key, hasHistory: true, newSources: 0, calls: 0, sample: [] })).toBeNull();
  });

  it('counts every new source and call, naming at most DETAIL_LIST_MAX', () => {
    const sample = Array.from({ length: DETAIL_LIST_MAX }, (_, i) => `10.0.1.${i}`);
    const raise = newSourceRaise({ ...key, hasHistory: true, newSources: 20_000, calls: 20_000, sample });
    expect(raise?.detail).toEqual(
      expect.objectContaining({ newSources: 20_000, calls: 20_000, sources: [...sample].sort() }),
    );
  });
});

describe('manySourcesRaise', () => {
  const sample = Array.from({ length: DETAIL_LIST_MAX }, (_, i) => `10.0.0.${i}`);

  it('raises at the threshold of distinct sources in the window, not one below', () => {
    expect(MANY_SOURCES_MIN).toBe(10);
    expect(
      manySourcesRaise({ ...key, distinctSources: MANY_SOURCES_MIN - 1, sample: sample.slice(0, 9) }),
    ).toBeNull();
    expect(manySourcesRaise({ ...key, distinctSources: 25, sample })).toEqual({
      tenantId: 't1',
      type: 'MANY_SOURCES',
      serviceAccountId: 'sa_1',
      keyId: 'key_1',
      detail: {
        minute: '2026-03-01T09:04:00.000Z',
        windowMinutes: 60,
        sources: 25,
        sample: [...sample].sort(),
      },
    });
  });
});
