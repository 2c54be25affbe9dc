import { Conflict, ID_PREFIX, newId, PolicyViolation } from '@keyward/core';
import {
  decideExpiry,
  decideIssue,
  decideNarrowToCeiling,
  decideRevoke,
  decideRotate,
  decideStartRotation,
  decideConfirmRotation,
  decideAbandonRotation,
  evolveKey,
  foldKey,
  isLive,
  keyStatusAt,
  revokeIfLive,
  type IssueContext,
  type IssueKey,
  type Key,
  type KeyAccount,
  type KeyFact,
} from './key';
import type { KeyEvent, KeyIssuedV1 } from './key.events';
import { issueKeySecret } from './key-secret';
import { DEFAULT_POLICY, type TenantPolicy } from './policy';

// Given events / when decision / then events (or error). Time is explicit everywhere: T0 is when
// the key is issued, and facts after it are placed by the test.

const T0 = new Date('2026-03-01T09:00:00.000Z');
const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
const after = (ms: number, from: Date = T0): Date => new Date(from.getTime() + ms);

const KEY_ID = 'key_AAAAAAAAAAAAAAAAAAA1';
const NEW_KEY_ID = 'key_BBBBBBBBBBBBBBBBBBB2';

function account(overrides: Partial<KeyAccount> = {}): KeyAccount {
  return {
    id: 'sa_00000000000000000001',
    tenantId: 'acme',
    status: 'active',
    environment: 'production',
    allowedScopes: ['tickets:read', 'summaries:draft'],
    boundaries: ['site:plant-7'],
    ...overrides,
  };
}

function command(overrides: Partial<IssueKey> = {}): IssueKey {
  return {
    id: KEY_ID,
    name: 'digest-worker-1',
    scopes: ['tickets:read'],
    boundaries: ['site:plant-7/asset-group:pumps'],
    allowedCidrs: ['10.20.1.0/24'],
    rateLimit: { limit: 100, windowSeconds: 60 },
    expiresInDays: 90,
    ...overrides,
  };
}

function context(
  overrides: {
    account?: Partial<KeyAccount>;
    policy?: Partial<TenantPolicy>;
    liveKeys?: number;
    now?: Date;
  } = {},
): IssueContext {
  const acct = account(overrides.account);
  const { prefix, hash } = issueKeySecret(KEY_ID, acct.environment);
  return {
    account: acct,
    policy: { ...DEFAULT_POLICY, ...overrides.policy },
    liveKeys: overrides.liveKeys ?? 0,
    now: overrides.now ?? T0,
    secret: { prefix, hash },
  };
}

type Outcome = KeyEvent[] | Error;

function outcome(run: () => KeyEvent[]): Outcome {
  try {
    return run();
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
}

function issuedData(result: Outcome): KeyIssuedV1 {
  if (result instanceof Error) throw result;
  expect(result).toHaveLength(1);
  const [event] = result;
  if (event.type !== 'KeyIssued') throw new Error(`expected KeyIssued, got ${event.type}`);
  return event.data;
}

function expectViolation(result: unknown, rule: string): PolicyViolation {
  expect(result).toBeInstanceOf(PolicyViolation);
  expect((result as PolicyViolation).rule).toBe(rule);
  expect((result as PolicyViolation).code).toBe('POLICY_VIOLATION');
  return result as PolicyViolation;
}

function expectConflict(result: unknown, message?: RegExp): Conflict {
  expect(result).toBeInstanceOf(Conflict);
  expect((result as Conflict).code).toBe('CONFLICT');
  if (message) expect((result as Conflict).message).toMatch(message);
  return result as Conflict;
}

/** A key issued at T0 (by decideIssue itself), with later facts placed at the given times. */
function keyWith(
  later: { event: KeyEvent; at: Date }[] = [],
  issue: { command?: Partial<IssueKey>; account?: Partial<KeyAccount> } = {},
): Key {
  const [issued] = decideIssue(command(issue.command), context({ account: issue.account }));
  const facts: KeyFact[] = [
    { ...issued, occurredAt: T0 },
    ...later.map(({ event, at }) => ({ ...event, occurredAt: at })),
  ];
  const key = foldKey(facts);
  if (!key) throw new Error('no key');
  return key;
}

const revoked: KeyEvent = { type: 'KeyRevoked', data: { cause: 'manual', emergency: false } };
const expired: KeyEvent = { type: 'KeyExpired', data: {} };
const rotated = (graceEndsAt: Date, replacedBy = NEW_KEY_ID): KeyEvent => ({
  type: 'KeyRotated',
  data: { replacedBy, graceEndsAt: graceEndsAt.toISOString() },
});

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('decideIssue', () => {
  describe('given an active account with room for keys', () => {
    it('when issued, then one KeyIssued carries the command, the account and the secret hash', () => {
      const ctx = context();
      expect(decideIssue(command(), ctx)).toEqual([
        {
          type: 'KeyIssued',
          data: {
            id: KEY_ID,
            tenantId: 'acme',
            serviceAccountId: 'sa_00000000000000000001',
            name: 'digest-worker-1',
            prefix: ctx.secret.prefix,
            secretHash: ctx.secret.hash,
            environment: 'production',
            scopes: ['tickets:read'],
            boundaries: ['site:plant-7/asset-group:pumps'],
            allowedCidrs: ['10.20.1.0/24'],
            rateLimit: { limit: 100, windowSeconds: 60 },
            expiresAt: '2026-05-30T09:00:00.000Z',
            replaces: null,
          },
        },
      ]);
    });

    it('when issued with repeated, unsorted lists, then scopes, boundaries and CIDRs are sorted and deduped', () => {
      const data = issuedData(
        outcome(() =>
          decideIssue(
            command({
              scopes: ['tickets:read', 'summaries:draft', 'tickets:read'],
              boundaries: ['site:plant-7/line:b', 'site:plant-7/line:a', 'site:plant-7/line:b'],
              allowedCidrs: ['10.20.2.0/24', '10.20.1.0/24', '10.20.2.0/24'],
            }),
            context(),
          ),
        ),
      );
      expect(data.scopes).toEqual(['summaries:draft', 'tickets:read']);
      expect(data.boundaries).toEqual(['site:plant-7/line:a', 'site:plant-7/line:b']);
      expect(data.allowedCidrs).toEqual(['10.20.1.0/24', '10.20.2.0/24']);
    });

    it('when issued for N days, then expiresAt is exactly now + N days', () => {
      for (const days of [1, 7, 30, 90]) {
        const data = issuedData(outcome(() => decideIssue(command({ expiresInDays: days }), context())));
        expect(Date.parse(data.expiresAt)).toBe(T0.getTime() + days * DAY);
      }
      const later = after(5 * HOUR + 17 * SECOND);
      const data = issuedData(
        outcome(() => decideIssue(command({ expiresInDays: 2 }), context({ now: later }))),
      );
      expect(data.expiresAt).toBe(after(2 * DAY, later).toISOString());
    });

    it.each([
      ['production', 90],
      ['staging', 180],
      ['development', 365],
    ] as const)(
      'when %s and no lifetime is asked, then the key lives the policy maximum (%i days)',
      (environment, days) => {
        const data = issuedData(
          outcome(() =>
            decideIssue(command({ expiresInDays: undefined }), context({ account: { environment } })),
          ),
        );
        expect(data.environment).toBe(environment);
        expect(Date.parse(data.expiresAt)).toBe(T0.getTime() + days * DAY);
      },
    );

    it('when the tenant lowered the maximum, then the default follows it', () => {
      const data = issuedData(
        outcome(() =>
          decideIssue(
            command({ expiresInDays: undefined }),
            context({ policy: { maxKeyLifetimeDays: { production: 30, staging: 180, development: 365 } } }),
          ),
        ),
      );
      expect(Date.parse(data.expiresAt)).toBe(T0.getTime() + 30 * DAY);
    });

    it('when issued by a rotation, then replaces names the old key', () => {
      const data = issuedData(outcome(() => decideIssue(command(), context(), 'key_OLDOLDOLDOLDOLDOLD1')));
      expect(data.replaces).toBe('key_OLDOLDOLDOLDOLDOLD1');
    });

    it('when no rate limit is asked, then none is recorded', () => {
      expect(
        issuedData(outcome(() => decideIssue(command({ rateLimit: null }), context()))).rateLimit,
      ).toBeNull();
    });
  });

  describe('scopes must lie within the account ceiling (rule "scopes")', () => {
    it('when a scope is outside the ceiling, then PolicyViolation names it', () => {
      const error = expectViolation(
        outcome(() => decideIssue(command({ scopes: ['tickets:read', 'tickets:write'] }), context())),
        'scopes',
      );
      expect(error.message).toMatch(/: tickets:write$/);
    });

    it('when the ceiling holds product:*, then any action of that product is allowed', () => {
      const ctx = context({ account: { allowedScopes: ['tickets:*'] } });
      const data = issuedData(
        outcome(() => decideIssue(command({ scopes: ['tickets:write', 'tickets:read', 'tickets:*'] }), ctx)),
      );
      expect(data.scopes).toEqual(['tickets:*', 'tickets:read', 'tickets:write']);
      expectViolation(
        outcome(() => decideIssue(command({ scopes: ['ticketsx:read'] }), ctx)),
        'scopes',
      );
    });

    it('when the key asks tickets:* and the ceiling only holds tickets:read, then it is refused', () => {
      expectViolation(
        outcome(() =>
          decideIssue(
            command({ scopes: ['tickets:*'] }),
            context({ account: { allowedScopes: ['tickets:read'] } }),
          ),
        ),
        'scopes',
      );
    });

    it('when the ceiling is empty, then any scope is refused', () => {
      expectViolation(
        outcome(() => decideIssue(command(), context({ account: { allowedScopes: [] } }))),
        'scopes',
      );
    });
  });

  describe('boundaries must lie inside the account boundaries (rule "boundaries")', () => {
    it('when a boundary lies outside, then PolicyViolation names it', () => {
      for (const outside of [
        'site:plant-70',
        'site:plant-8',
        'site:plant-7x/asset:1',
        'region:eu/site:plant-7',
      ]) {
        const error = expectViolation(
          outcome(() => decideIssue(command({ boundaries: [outside] }), context())),
          'boundaries',
        );
        expect(error.message).toContain(outside);
      }
    });

    it('when a boundary equals or lies below the account boundary, then it is allowed', () => {
      for (const inside of ['site:plant-7', 'site:plant-7/asset-group:pumps/asset:P-101']) {
        expect(
          issuedData(outcome(() => decideIssue(command({ boundaries: [inside] }), context()))),
        ).toBeTruthy();
      }
    });

    it('when the account has no boundaries, then any boundary is allowed', () => {
      const data = issuedData(
        outcome(() =>
          decideIssue(
            command({ boundaries: ['region:eu', 'site:plant-70'] }),
            context({ account: { boundaries: [] } }),
          ),
        ),
      );
      expect(data.boundaries).toEqual(['region:eu', 'site:plant-70']);
    });

    it('when a boundary is not a canonical resource, then ValidationFailed, bounded account or not', () => {
      for (const account of [{}, { boundaries: [] }]) {
        for (const bad of [
          'site:plant-7/..',
          'site:plant-7/asset:..',
          'site:plant-7/',
          'site:plant-7/%2e%2e',
          '',
        ]) {
          const error = outcome(() => decideIssue(command({ boundaries: [bad] }), context({ account })));
          expect(error).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'boundaries' }] });
        }
      }
    });

    it('when the key has no boundaries, then it is allowed (it inherits the account boundaries)', () => {
      expect(
        issuedData(outcome(() => decideIssue(command({ boundaries: [] }), context()))).boundaries,
      ).toEqual([]);
    });
  });

  describe('lifetime at most the environment maximum (rule "maxKeyLifetimeDays")', () => {
    it.each([
      ['production', 90],
      ['staging', 180],
      ['development', 365],
    ] as const)(
      'when a %s key asks one day over %i, then it is refused; the maximum itself is fine',
      (env, max) => {
        const ctx = context({ account: { environment: env } });
        expectViolation(
          outcome(() => decideIssue(command({ expiresInDays: max + 1 }), ctx)),
          'maxKeyLifetimeDays',
        );
        const data = issuedData(outcome(() => decideIssue(command({ expiresInDays: max }), ctx)));
        expect(Date.parse(data.expiresAt)).toBe(T0.getTime() + max * DAY);
      },
    );

    it('when the tenant lowered the maximum, then the lower one applies', () => {
      const ctx = context({
        policy: { maxKeyLifetimeDays: { production: 30, staging: 180, development: 365 } },
      });
      expectViolation(
        outcome(() => decideIssue(command({ expiresInDays: 31 }), ctx)),
        'maxKeyLifetimeDays',
      );
    });
  });

  describe('live keys at most maxActiveKeys (rule "maxActiveKeys")', () => {
    it('when the account already holds maxActiveKeys live keys, then it is refused', () => {
      expectViolation(
        outcome(() => decideIssue(command(), context({ liveKeys: 10 }))),
        'maxActiveKeys',
      );
      expectViolation(
        outcome(() => decideIssue(command(), context({ liveKeys: 11 }))),
        'maxActiveKeys',
      );
    });

    it('when it holds one fewer, then the last slot is given', () => {
      expect(issuedData(outcome(() => decideIssue(command(), context({ liveKeys: 9 }))))).toBeTruthy();
    });

    it('when the tenant changed the limit, then that limit applies', () => {
      expectViolation(
        outcome(() => decideIssue(command(), context({ liveKeys: 2, policy: { maxActiveKeys: 2 } }))),
        'maxActiveKeys',
      );
      expect(
        issuedData(
          outcome(() => decideIssue(command(), context({ liveKeys: 1, policy: { maxActiveKeys: 2 } }))),
        ),
      ).toBeTruthy();
    });
  });

  describe('the account must be active', () => {
    it.each(['disabled', 'deleted'] as const)('when the account is %s, then Conflict', (status) => {
      expectConflict(
        outcome(() => decideIssue(command(), context({ account: { status } }))),
        new RegExp(status),
      );
    });

    it('when the account is disabled and the request breaks policy too, then still Conflict', () => {
      expectConflict(
        outcome(() =>
          decideIssue(
            command({ scopes: ['admin:*'], expiresInDays: 1000 }),
            context({ account: { status: 'disabled' } }),
          ),
        ),
      );
    });
  });
});

describe('keyStatusAt', () => {
  const expiresAt = after(90 * DAY);

  it('given a fresh key, then active until its expiry, and live', () => {
    const key = keyWith();
    expect(key.expiresAt).toBe(expiresAt.toISOString());
    expect(keyStatusAt(key, T0)).toBe('active');
    expect(keyStatusAt(key, after(-1, expiresAt))).toBe('active');
    expect(isLive(key, after(-1, expiresAt))).toBe(true);
  });

  it('given a fresh key, then expired at exactly expiresAt and after, without any event', () => {
    const key = keyWith();
    expect(keyStatusAt(key, expiresAt)).toBe('expired');
    expect(keyStatusAt(key, after(DAY, expiresAt))).toBe('expired');
    expect(isLive(key, expiresAt)).toBe(false);
  });

  it('given a rotation, then rotating during the grace and expired at its end', () => {
    const graceEnd = after(DAY + HOUR);
    const key = keyWith([{ event: rotated(graceEnd), at: after(HOUR) }]);
    expect(keyStatusAt(key, after(HOUR))).toBe('rotating');
    expect(keyStatusAt(key, after(-1, graceEnd))).toBe('rotating');
    expect(isLive(key, after(-1, graceEnd))).toBe(true);
    expect(keyStatusAt(key, graceEnd)).toBe('expired');
    expect(keyStatusAt(key, after(1, graceEnd))).toBe('expired');
    expect(isLive(key, graceEnd)).toBe(false);
  });

  it('given a revocation, then revoked, even after expiry and during a grace', () => {
    const key = keyWith([
      { event: rotated(after(2 * DAY)), at: after(HOUR) },
      { event: revoked, at: after(2 * HOUR) },
    ]);
    expect(keyStatusAt(key, after(3 * HOUR))).toBe('revoked');
    expect(keyStatusAt(key, after(3 * DAY))).toBe('revoked');
    expect(keyStatusAt(key, after(DAY, expiresAt))).toBe('revoked');
    expect(isLive(key, after(3 * HOUR))).toBe(false);
  });

  it('given a revocation after a KeyExpired, then revoked beats expired', () => {
    const key = keyWith([
      { event: expired, at: expiresAt },
      { event: revoked, at: after(HOUR, expiresAt) },
    ]);
    expect(keyStatusAt(key, after(2 * HOUR, expiresAt))).toBe('revoked');
  });

  it('given a KeyExpired event, then expired even before expiresAt', () => {
    const key = keyWith([{ event: expired, at: after(DAY) }]);
    expect(keyStatusAt(key, after(2 * DAY))).toBe('expired');
    expect(keyStatusAt(key, T0)).toBe('expired');
  });
});

describe('decideRotate', () => {
  const rotateAt = after(10 * DAY);

  function rotate(old: Key, graceSeconds: number, overrides: Parameters<typeof context>[0] = {}) {
    return decideRotate(old, NEW_KEY_ID, graceSeconds, context({ liveKeys: 1, now: rotateAt, ...overrides }));
  }

  it('given an active key, then the old stream gets KeyRotated and the new key is issued, linked both ways', () => {
    const old = keyWith();
    const rotation = rotate(old, 86_400);
    expect(rotation.old).toEqual([
      {
        type: 'KeyRotated',
        data: { replacedBy: NEW_KEY_ID, graceEndsAt: after(DAY, rotateAt).toISOString() },
      },
    ]);
    const data = issuedData(rotation.issued);
    expect(data.id).toBe(NEW_KEY_ID);
    expect(data.replaces).toBe(KEY_ID);
  });

  it('given a key issued with a boundary the canonical form now refuses, then it still rotates, carrying it', () => {
    const fresh = keyWith([], { account: { boundaries: [] } });
    const legacy: Key = { ...fresh, boundaries: ['site:..'] };
    const data = issuedData(rotate(legacy, 60, { account: { boundaries: [] } }).issued);
    expect(data.boundaries).toEqual(['site:..']);
  });

  it('then the new key has the same scopes, boundaries, CIDRs, rate limit, name and account', () => {
    const old = keyWith([], {
      command: {
        scopes: ['tickets:read', 'summaries:draft'],
        boundaries: ['site:plant-7/line:a', 'site:plant-7/line:b'],
        allowedCidrs: ['10.20.1.0/24', '2001:db8::/32'],
        rateLimit: { limit: 7, windowSeconds: 3 },
      },
    });
    const data = issuedData(rotate(old, 60).issued);
    expect(data.scopes).toEqual(old.scopes);
    expect(data.boundaries).toEqual(old.boundaries);
    expect(data.allowedCidrs).toEqual(old.allowedCidrs);
    expect(data.rateLimit).toEqual({ limit: 7, windowSeconds: 3 });
    expect(data.name).toBe(old.name);
    expect(data.serviceAccountId).toBe(old.serviceAccountId);
    expect(data.tenantId).toBe(old.tenantId);
    expect(data.environment).toBe(old.environment);
  });

  it('then the new key lives as long as the old one was issued for, from now', () => {
    const old = keyWith([], { command: { expiresInDays: 30 } });
    const data = issuedData(rotate(old, 60).issued);
    expect(Date.parse(data.expiresAt)).toBe(rotateAt.getTime() + 30 * DAY);
  });

  it('then the new key lifetime is capped by the policy in force now', () => {
    const old = keyWith();
    const data = issuedData(
      rotate(old, 60, { policy: { maxKeyLifetimeDays: { production: 20, staging: 180, development: 365 } } })
        .issued,
    );
    expect(Date.parse(data.expiresAt)).toBe(rotateAt.getTime() + 20 * DAY);
  });

  it('then the old key is rotating during the grace and expired at its end', () => {
    const old = keyWith();
    const rotation = rotate(old, 3600);
    const after1 = evolveKey(old, { ...rotation.old[0], occurredAt: rotateAt });
    expect(after1.replacedBy).toBe(NEW_KEY_ID);
    expect(keyStatusAt(after1, rotateAt)).toBe('rotating');
    expect(keyStatusAt(after1, after(HOUR - 1, rotateAt))).toBe('rotating');
    expect(keyStatusAt(after1, after(HOUR, rotateAt))).toBe('expired');
  });

  it('when the grace would run past the old key expiry, then it ends at that expiry', () => {
    const old = keyWith([], { command: { expiresInDays: 11 } });
    const oldExpiry = Date.parse(old.expiresAt);
    expect(oldExpiry - rotateAt.getTime()).toBe(DAY);
    const rotation = rotate(old, 7 * 86_400);
    const [event] = rotation.old;
    if (event.type !== 'KeyRotated') throw new Error(event.type);
    expect(Date.parse(event.data.graceEndsAt)).toBe(oldExpiry);
  });

  it('when the grace is 0, then the old key is expired immediately', () => {
    const old = keyWith();
    const rotation = rotate(old, 0);
    const [event] = rotation.old;
    if (event.type !== 'KeyRotated') throw new Error(event.type);
    expect(event.data.graceEndsAt).toBe(rotateAt.toISOString());
    const now = evolveKey(old, { ...event, occurredAt: rotateAt });
    expect(keyStatusAt(now, rotateAt)).toBe('expired');
    expect(isLive(now, rotateAt)).toBe(false);
  });

  it('given a key already rotating, then Conflict', () => {
    const old = keyWith([{ event: rotated(after(2 * DAY, rotateAt)), at: after(-HOUR, rotateAt) }]);
    expectConflict(
      thrown(() => rotate(old, 60)),
      /rotat/,
    );
  });

  it('given a key whose rotation grace ended, then Conflict (it is expired)', () => {
    const old = keyWith([{ event: rotated(after(-HOUR, rotateAt)), at: after(-DAY, rotateAt) }]);
    expectConflict(
      thrown(() => rotate(old, 60)),
      /expired/,
    );
  });

  it('given a revoked key, then Conflict', () => {
    const old = keyWith([{ event: revoked, at: after(DAY) }]);
    expectConflict(
      thrown(() => rotate(old, 60)),
      /revoked/,
    );
  });

  it('given an expired key (by time or by event), then Conflict', () => {
    const byTime = keyWith([], { command: { expiresInDays: 5 } });
    expectConflict(
      thrown(() => rotate(byTime, 60)),
      /expired/,
    );
    const byEvent = keyWith([{ event: expired, at: after(DAY) }]);
    expectConflict(
      thrown(() => rotate(byEvent, 60)),
      /expired/,
    );
  });

  it('then the new key counts against maxActiveKeys', () => {
    const old = keyWith();
    expectViolation(
      thrown(() => rotate(old, 60, { liveKeys: 10 })),
      'maxActiveKeys',
    );
    expect(issuedData(rotate(old, 60, { liveKeys: 9 }).issued).id).toBe(NEW_KEY_ID);
  });

  it('given the account was disabled, then Conflict and nothing is rotated', () => {
    const old = keyWith();
    expectConflict(thrown(() => rotate(old, 60, { account: { status: 'disabled' } })));
  });
});

describe('decideRevoke and revokeIfLive', () => {
  it('given a live key, when revoked, then one KeyRevoked with the cause', () => {
    expect(decideRevoke(keyWith(), 'manual')).toEqual([
      { type: 'KeyRevoked', data: { cause: 'manual', emergency: false } },
    ]);
    expect(decideRevoke(keyWith(), 'exposed', true)).toEqual([
      { type: 'KeyRevoked', data: { cause: 'exposed', emergency: true } },
    ]);
  });

  it('given a revoked key, when revoked again, then Conflict', () => {
    const key = keyWith([{ event: revoked, at: after(HOUR) }]);
    expectConflict(
      thrown(() => decideRevoke(key, 'manual')),
      /revoked/,
    );
  });

  it('given a live or rotating key, when revoked as a side effect, then KeyRevoked', () => {
    expect(revokeIfLive(keyWith(), after(HOUR), 'account-deleted')).toEqual([
      { type: 'KeyRevoked', data: { cause: 'account-deleted', emergency: false } },
    ]);
    const rotating = keyWith([{ event: rotated(after(DAY)), at: after(HOUR) }]);
    expect(revokeIfLive(rotating, after(2 * HOUR), 'break-glass')).toEqual([
      { type: 'KeyRevoked', data: { cause: 'break-glass', emergency: true } },
    ]);
  });

  it('given a dead key, when revoked as a side effect, then no event', () => {
    const key = keyWith();
    expect(revokeIfLive(keyWith([{ event: revoked, at: after(HOUR) }]), after(DAY), 'break-glass')).toEqual(
      [],
    );
    expect(revokeIfLive(key, new Date(key.expiresAt), 'account-deleted')).toEqual([]);
    expect(
      revokeIfLive(keyWith([{ event: expired, at: after(HOUR) }]), after(DAY), 'account-deleted'),
    ).toEqual([]);
    const graceOver = keyWith([{ event: rotated(after(DAY)), at: after(HOUR) }]);
    expect(revokeIfLive(graceOver, after(DAY), 'break-glass')).toEqual([]);
  });
});

describe('decideExpiry', () => {
  it('given a key before its expiry, then no event; at and after it, one KeyExpired', () => {
    const key = keyWith();
    const expiry = new Date(key.expiresAt);
    expect(decideExpiry(key, new Date(expiry.getTime() - 1))).toEqual([]);
    expect(decideExpiry(key, expiry)).toEqual([{ type: 'KeyExpired', data: {} }]);
    expect(decideExpiry(key, after(400 * DAY))).toEqual([{ type: 'KeyExpired', data: {} }]);
  });

  it('given a rotated key, then KeyExpired once its grace has ended, not before', () => {
    const rotating = keyWith([{ event: rotated(after(DAY)), at: after(HOUR) }]);
    expect(decideExpiry(rotating, after(2 * HOUR))).toEqual([]);
    expect(decideExpiry(rotating, after(DAY))).toEqual([{ type: 'KeyExpired', data: {} }]);
  });

  it('given a key already expired or revoked, then nothing (the sweep may run any number of times)', () => {
    expect(decideExpiry(keyWith([{ event: expired, at: after(HOUR) }]), after(400 * DAY))).toEqual([]);
    expect(decideExpiry(keyWith([{ event: revoked, at: after(HOUR) }]), after(400 * DAY))).toEqual([]);
  });
});

describe('decideNarrowToCeiling', () => {
  it('when the ceiling no longer covers some scopes, then KeyScopesNarrowed removes exactly those', () => {
    const key = keyWith([], {
      command: { scopes: ['orders:read', 'tickets:read', 'tickets:write'] },
      account: { allowedScopes: ['orders:read', 'tickets:*'] },
    });
    expect(decideNarrowToCeiling(key, ['orders:read'])).toEqual([
      { type: 'KeyScopesNarrowed', data: { removed: ['tickets:read', 'tickets:write'] } },
    ]);
  });

  it('when the ceiling loses tickets:*, then tickets:read goes too', () => {
    const key = keyWith([], {
      command: { scopes: ['summaries:draft', 'tickets:read'] },
      account: { allowedScopes: ['summaries:draft', 'tickets:*'] },
    });
    expect(decideNarrowToCeiling(key, ['summaries:draft'])).toEqual([
      { type: 'KeyScopesNarrowed', data: { removed: ['tickets:read'] } },
    ]);
  });

  it('when the ceiling narrows tickets:* to tickets:read, then a key tickets:* loses it', () => {
    const key = keyWith([], {
      command: { scopes: ['tickets:*'] },
      account: { allowedScopes: ['tickets:*'] },
    });
    expect(decideNarrowToCeiling(key, ['tickets:read'])).toEqual([
      { type: 'KeyScopesNarrowed', data: { removed: ['tickets:*'] } },
    ]);
  });

  it('when everything is still covered, then no event', () => {
    const key = keyWith([], { command: { scopes: ['tickets:read', 'summaries:draft'] } });
    expect(decideNarrowToCeiling(key, ['tickets:read', 'summaries:draft'])).toEqual([]);
    expect(decideNarrowToCeiling(key, ['tickets:*', 'summaries:*'])).toEqual([]);
  });

  it('given a revoked key, then no event', () => {
    const key = keyWith([{ event: revoked, at: after(HOUR) }]);
    expect(decideNarrowToCeiling(key, [])).toEqual([]);
  });

  it('then the folded key no longer carries the removed scopes', () => {
    const key = keyWith([], {
      command: { scopes: ['summaries:draft', 'tickets:read'] },
    });
    const [event] = decideNarrowToCeiling(key, ['summaries:draft']);
    const narrowed = evolveKey(key, { ...event, occurredAt: after(HOUR) });
    expect(narrowed.scopes).toEqual(['summaries:draft']);
  });
});

describe('evolveKey and foldKey', () => {
  it('KeyIssued starts the key at version 1 with createdAt = updatedAt = occurredAt', () => {
    const key = keyWith();
    expect(key).toMatchObject({
      id: KEY_ID,
      version: 1,
      createdAt: T0,
      updatedAt: T0,
      replacedBy: null,
      graceEndsAt: null,
      revokedAt: null,
      expiredAt: null,
      exposedAt: null,
    });
  });

  it('each later event adds one to the version and moves updatedAt, never createdAt', () => {
    const t1 = after(HOUR);
    const t2 = after(2 * HOUR);
    const t3 = after(3 * HOUR);
    const t4 = after(4 * HOUR);
    const key = keyWith([
      {
        event: { type: 'KeyExposed', data: { url: 'https://example.test/leak', source: 'scanner' } },
        at: t1,
      },
      { event: { type: 'KeyScopesNarrowed', data: { removed: ['tickets:read'] } }, at: t2 },
      { event: rotated(after(DAY)), at: t3 },
      { event: revoked, at: t4 },
    ]);
    expect(key.version).toBe(5);
    expect(key.createdAt).toEqual(T0);
    expect(key.updatedAt).toEqual(t4);
    expect(key.exposedAt).toEqual(t1);
    expect(key.scopes).toEqual([]);
    expect(key.replacedBy).toBe(NEW_KEY_ID);
    expect(key.graceEndsAt).toBe(after(DAY).toISOString());
    expect(key.revokedAt).toEqual(t4);
  });

  it('KeyExpired records when', () => {
    const at = after(90 * DAY);
    const key = keyWith([{ event: expired, at }]);
    expect(key.expiredAt).toEqual(at);
    expect(key.version).toBe(2);
    expect(key.updatedAt).toEqual(at);
  });

  it('does not change the state it was given', () => {
    const key = keyWith();
    const copy = structuredClone(key);
    evolveKey(key, { ...revoked, occurredAt: after(HOUR) });
    expect(key).toEqual(copy);
  });

  it('an event before KeyIssued is an error; no events is no key', () => {
    expect(() => evolveKey(null, { ...revoked, occurredAt: T0 })).toThrow(/before KeyIssued/);
    expect(foldKey([])).toBeNull();
  });

  it('keys made from real ids fold too', () => {
    const id = newId(ID_PREFIX.key);
    const [issued] = decideIssue(command({ id }), context());
    expect(foldKey([{ ...issued, occurredAt: T0 }])?.id).toBe(id);
  });
});

describe('scheduled rotation with secret delivery (given events / when / then)', () => {
  const started: KeyEvent = { type: 'KeyRotationStarted', data: { replacedBy: NEW_KEY_ID } };

  it('start: issues the replacement and leaves the old key fully active, with no grace', () => {
    const old = keyWith();
    const rotation = decideStartRotation(old, NEW_KEY_ID, context({ now: after(DAY) }));
    expect(rotation.old).toEqual([started]);
    expect(rotation.issued[0]).toMatchObject({
      type: 'KeyIssued',
      data: { id: NEW_KEY_ID, replaces: KEY_ID },
    });
    const next = evolveKey(old, { ...started, occurredAt: after(DAY) });
    expect(next).toMatchObject({ pendingReplacement: NEW_KEY_ID, replacedBy: null, graceEndsAt: null });
    expect(keyStatusAt(next, after(DAY))).toBe('active');
  });

  it('start: refused while another rotation is delivering, and refused for a manual rotate too', () => {
    const inFlight = keyWith([{ event: started, at: after(DAY) }]);
    expectConflict(
      thrown(() => decideStartRotation(inFlight, 'key_CCCCCCCCCCCCCCCCCCC3', context())),
      /being delivered/,
    );
    expectConflict(
      thrown(() => decideRotate(inFlight, 'key_CCCCCCCCCCCCCCCCCCC3', 60, context())),
      /being delivered/,
    );
  });

  it('confirm: the grace starts at confirmation, never past the old expiry', () => {
    const inFlight = keyWith([{ event: started, at: after(DAY) }]);
    const confirmedAt = after(DAY + HOUR);
    expect(decideConfirmRotation(inFlight, 3600, confirmedAt)).toEqual([rotated(after(HOUR, confirmedAt))]);
    const nearEnd = after(90 * DAY - 60 * SECOND);
    expect(decideConfirmRotation(inFlight, 3600, nearEnd)).toEqual([rotated(after(90 * DAY))]);
    const done = evolveKey(inFlight, { ...rotated(after(HOUR, confirmedAt)), occurredAt: confirmedAt });
    expect(done).toMatchObject({ pendingReplacement: null, replacedBy: NEW_KEY_ID });
    expect(keyStatusAt(done, confirmedAt)).toBe('rotating');
  });

  it('confirm: nothing for an old key revoked meanwhile; an error without a rotation in flight', () => {
    const revokedMeanwhile = keyWith([
      { event: started, at: after(DAY) },
      { event: revoked, at: after(DAY + 1) },
    ]);
    expect(decideConfirmRotation(revokedMeanwhile, 3600, after(DAY + 2))).toEqual([]);
    expectConflict(
      thrown(() => decideConfirmRotation(keyWith(), 3600, after(DAY))),
      /no rotation in progress/,
    );
  });

  it('abandon: the old key is as before and the replacement is revoked as delivery-failed', () => {
    const inFlight = keyWith([{ event: started, at: after(DAY) }]);
    const [issued] = decideStartRotation(keyWith(), NEW_KEY_ID, context()).issued;
    const replacement = foldKey([{ ...issued, occurredAt: after(DAY) }])!;
    const abandoned = decideAbandonRotation(
      inFlight,
      replacement,
      'the receiver answered 500',
      after(DAY + 1),
    );
    expect(abandoned.old).toEqual([
      { type: 'KeyRotationAbandoned', data: { replacedBy: NEW_KEY_ID, error: 'the receiver answered 500' } },
    ]);
    expect(abandoned.issued).toEqual([
      { type: 'KeyRevoked', data: { cause: 'delivery-failed', emergency: false } },
    ]);
    const after1 = evolveKey(inFlight, { ...abandoned.old[0], occurredAt: after(DAY + 1) });
    expect(after1.pendingReplacement).toBeNull();
    expect(keyStatusAt(after1, after(DAY + 1))).toBe('active');
    // And it can be rotated again.
    expect(
      decideRotate(after1, 'key_CCCCCCCCCCCCCCCCCCC3', 60, context({ now: after(DAY + 2) })).old,
    ).toHaveLength(1);
  });

  it('abandon: refuses a key that is not the rotation in flight', () => {
    const inFlight = keyWith([{ event: started, at: after(DAY) }]);
    const other = keyWith();
    expectConflict(
      thrown(() => decideAbandonRotation(inFlight, other, 'x', after(DAY))),
      /not the rotation in progress/,
    );
  });
});
