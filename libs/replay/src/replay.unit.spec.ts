import type { ServiceAccountCreatedV1 } from '@keyward/accounts';
import type { KeyIssuedV1 } from '@keyward/keys';
import { accessAsOf, issuedKeyMayCover } from './access';
import { accountAsOf } from './account-state';
import { resolveAsOf, streamsAsOf } from './as-of';
import type { StreamEvent } from './stream-event';

// Given stored events / when replayed as of a time / then the state or access. Times are explicit:
// T0 is the account's creation; every other fact is placed relative to it.

const T0 = new Date('2026-03-01T09:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const after = (ms: number): Date => new Date(T0.getTime() + ms);

const ACCOUNT = 'sa_AAAAAAAAAAAAAAAAAAA1';
const OTHER_ACCOUNT = 'sa_BBBBBBBBBBBBBBBBBBB2';
const K1 = 'key_AAAAAAAAAAAAAAAAAAA1';
const K2 = 'key_BBBBBBBBBBBBBBBBBBB2';
const K3 = 'key_CCCCCCCCCCCCCCCCCCC3';

let position = 0n;
const versions = new Map<string, number>();

/** An event as the reader hands it over, next in its stream and in the global order. */
function stored(streamId: string, type: string, data: unknown, occurredAt: Date): StreamEvent {
  const version = (versions.get(streamId) ?? 0) + 1;
  versions.set(streamId, version);
  position += 1n;
  return {
    position,
    streamId,
    streamType: streamId.startsWith('sa_') ? 'service-account' : 'key',
    streamVersion: version,
    type,
    data,
    occurredAt,
  };
}

function created(id: string, at: Date, overrides: Partial<ServiceAccountCreatedV1> = {}): StreamEvent {
  const data: ServiceAccountCreatedV1 = {
    id,
    tenantId: 'acme',
    name: id === ACCOUNT ? 'digest' : 'billing',
    environment: 'staging',
    description: null,
    intendedScope: null,
    businessOwner: 'support-ops',
    technicalOwner: 'ai-platform',
    allowedScopes: ['tickets:read'],
    boundaries: [],
    allowedCidrs: [],
    abuseDetection: true,
    rotationPolicy: null,
    secretDelivery: null,
    ...overrides,
  };
  return stored(id, 'ServiceAccountCreated', data, at);
}

function issued(id: string, at: Date, overrides: Partial<KeyIssuedV1> = {}): StreamEvent {
  const data: KeyIssuedV1 = {
    id,
    tenantId: 'acme',
    serviceAccountId: ACCOUNT,
    name: `name-${id}`,
    prefix: `kw_stage_${id.slice(4)}`,
    secretHash: 'f'.repeat(64),
    environment: 'staging',
    scopes: ['tickets:read'],
    boundaries: [],
    allowedCidrs: [],
    rateLimit: null,
    expiresAt: new Date(at.getTime() + 30 * DAY).toISOString(),
    replaces: null,
    ...overrides,
  };
  return stored(id, 'KeyIssued', data, at);
}

beforeEach(() => {
  position = 0n;
  versions.clear();
});

describe('resolveAsOf', () => {
  const now = after(DAY);

  it('is now when no time is asked for, or a time after now', () => {
    expect(resolveAsOf(undefined, now)).toBe(now);
    expect(resolveAsOf(after(DAY + 1), now)).toBe(now);
  });

  it('is the time asked for up to now, inclusive', () => {
    expect(resolveAsOf(T0, now)).toBe(T0);
    expect(resolveAsOf(new Date(now), now).getTime()).toBe(now.getTime());
  });
});

describe('streamsAsOf', () => {
  it('groups by stream in version order and keeps events up to the time, inclusive', () => {
    const a1 = created(ACCOUNT, T0);
    const k1 = issued(K1, after(HOUR));
    const a2 = stored(ACCOUNT, 'ServiceAccountDisabled', {}, after(2 * HOUR));
    const streams = streamsAsOf([a2, k1, a1], after(HOUR));
    expect([...streams.keys()].sort()).toEqual([K1, ACCOUNT].sort());
    expect(streams.get(ACCOUNT)).toEqual([a1]);
    expect(streams.get(K1)).toEqual([k1]);
    expect(streamsAsOf([a1, k1, a2], after(2 * HOUR)).get(ACCOUNT)).toEqual([a1, a2]);
  });

  it('leaves out streams that had not begun', () => {
    expect(streamsAsOf([created(ACCOUNT, T0)], after(-1)).size).toBe(0);
  });

  it('stops a stream at the first version stamped after the time, even if a later one is stamped earlier', () => {
    const v1 = created(ACCOUNT, T0);
    const v2 = stored(ACCOUNT, 'ServiceAccountDisabled', {}, after(2 * HOUR));
    // Another server's clock, behind: a later version stamped earlier must not be folded without v2.
    const v3 = stored(ACCOUNT, 'ServiceAccountEnabled', {}, after(HOUR));
    expect(streamsAsOf([v1, v2, v3], after(90 * MINUTE)).get(ACCOUNT)).toEqual([v1]);
    expect(streamsAsOf([v1, v3], after(2 * HOUR)).get(ACCOUNT)).toEqual([v1]);
  });
});

describe('accountAsOf', () => {
  function walk(): StreamEvent[] {
    return [
      created(ACCOUNT, T0, { allowedScopes: ['tickets:read', 'tickets:write'] }),
      issued(K1, after(HOUR), { expiresAt: after(HOUR + DAY).toISOString() }),
      issued(K2, after(2 * HOUR), { scopes: ['tickets:read', 'tickets:write'] }),
      stored(
        K1,
        'KeyRotated',
        { replacedBy: K3, graceEndsAt: after(4 * HOUR).toISOString() },
        after(3 * HOUR),
      ),
      issued(K3, after(3 * HOUR), { replaces: K1 }),
      stored(ACCOUNT, 'ScopeRevoked', { scope: 'tickets:write' }, after(5 * HOUR)),
      stored(K2, 'KeyScopesNarrowed', { removed: ['tickets:write'] }, after(5 * HOUR)),
      stored(ACCOUNT, 'ServiceAccountDisabled', {}, after(6 * HOUR)),
      created(OTHER_ACCOUNT, T0),
      issued('key_DDDDDDDDDDDDDDDDDDD4', after(HOUR), { serviceAccountId: OTHER_ACCOUNT }),
    ];
  }

  const summary = (events: StreamEvent[], at: Date) => {
    const state = accountAsOf(events, ACCOUNT, at);
    return (
      state && {
        status: state.account.status,
        version: state.account.version,
        allowedScopes: state.account.allowedScopes,
        keys: state.keys.map(({ key, status }) => `${key.id}: ${status} [${key.scopes.join(' ')}]`),
        activeKeyCount: state.activeKeyCount,
      }
    );
  };

  it('is null before the account was created', () => {
    expect(accountAsOf(walk(), ACCOUNT, after(-1))).toBeNull();
  });

  it('is null for an id that names a key stream, not an account', () => {
    expect(accountAsOf(walk(), K1, after(DAY))).toBeNull();
  });

  it('folds the account and only its own keys, oldest first, with their status at the time', () => {
    const events = walk();
    expect(summary(events, T0)).toEqual({
      status: 'active',
      version: 1,
      allowedScopes: ['tickets:read', 'tickets:write'],
      keys: [],
      activeKeyCount: 0,
    });
    expect(summary(events, after(3 * HOUR))).toEqual({
      status: 'active',
      version: 1,
      allowedScopes: ['tickets:read', 'tickets:write'],
      keys: [
        `${K1}: rotating [tickets:read]`,
        `${K2}: active [tickets:read tickets:write]`,
        `${K3}: active [tickets:read]`,
      ],
      activeKeyCount: 3,
    });
    expect(summary(events, after(4 * HOUR))!.keys[0]).toBe(`${K1}: expired [tickets:read]`);
    expect(summary(events, after(6 * HOUR))).toEqual({
      status: 'disabled',
      version: 3,
      allowedScopes: ['tickets:read'],
      keys: [`${K1}: expired [tickets:read]`, `${K2}: active [tickets:read]`, `${K3}: active [tickets:read]`],
      activeKeyCount: 2,
    });
  });

  it('counts a key past its expiry as expired with no KeyExpired event', () => {
    const events = [created(ACCOUNT, T0), issued(K1, T0, { expiresAt: after(HOUR).toISOString() })];
    expect(accountAsOf(events, ACCOUNT, after(HOUR - 1))!.keys[0].status).toBe('active');
    expect(accountAsOf(events, ACCOUNT, after(HOUR))!.keys[0].status).toBe('expired');
    expect(accountAsOf(events, ACCOUNT, after(HOUR))!.activeKeyCount).toBe(0);
  });

  it('passes over event types the aggregates do not know, as the projections do', () => {
    const events = [created(ACCOUNT, T0), stored(ACCOUNT, 'SomethingLater', { x: 1 }, after(HOUR))];
    expect(accountAsOf(events, ACCOUNT, after(DAY))!.account.status).toBe('active');
  });
});

describe('accessAsOf', () => {
  const items = (events: StreamEvent[], scope: string, at: Date) =>
    accessAsOf(events, scope, at).map((i) => `${i.key.id}: ${i.status} [${i.matchingScopes.join(' ')}]`);

  it('finds a live key whose scopes and account ceiling cover the scope, by wildcard too', () => {
    const events = [
      created(ACCOUNT, T0, { allowedScopes: ['tickets:*'] }),
      issued(K1, after(HOUR), { scopes: ['tickets:*'] }),
      issued(K2, after(HOUR), { scopes: ['tickets:read'] }),
    ];
    expect(items(events, 'tickets:read', after(HOUR))).toEqual([
      `${K1}: active [tickets:*]`,
      `${K2}: active [tickets:read]`,
    ]);
    expect(items(events, 'tickets:write', after(HOUR))).toEqual([`${K1}: active [tickets:*]`]);
    // A wildcard asked for is matched as verify would match it: only a key holding it covers it.
    expect(items(events, 'tickets:*', after(HOUR))).toEqual([`${K1}: active [tickets:*]`]);
    expect(items(events, 'billing:read', after(HOUR))).toEqual([]);
    expect(items(events, 'tickets:read', after(HOUR - 1))).toEqual([]);
  });

  it('names the events that put the covering scopes on the ceiling and on the key', () => {
    const events = [
      created(ACCOUNT, T0),
      stored(ACCOUNT, 'ScopesGranted', { scopes: ['tickets:*'] }, after(HOUR)),
      issued(K1, after(2 * HOUR), { scopes: ['tickets:*', 'tickets:read'] }),
    ];
    const [item] = accessAsOf(events, 'tickets:read', after(2 * HOUR));
    expect(item.grantedBy.ceiling).toEqual([
      expect.objectContaining({ type: 'ServiceAccountCreated', version: 1, scopes: ['tickets:read'] }),
      expect.objectContaining({
        type: 'ScopesGranted',
        version: 2,
        position: 2n,
        streamId: ACCOUNT,
        occurredAt: after(HOUR),
        scopes: ['tickets:*'],
      }),
    ]);
    expect(item.grantedBy.key).toEqual([
      expect.objectContaining({ type: 'KeyIssued', streamId: K1, scopes: ['tickets:*', 'tickets:read'] }),
    ]);
  });

  it('names the grant that restored a scope revoked before, not the first one', () => {
    const events = [
      created(ACCOUNT, T0),
      stored(ACCOUNT, 'ScopeRevoked', { scope: 'tickets:read' }, after(HOUR)),
      stored(ACCOUNT, 'ScopesGranted', { scopes: ['tickets:read'] }, after(2 * HOUR)),
      issued(K1, after(3 * HOUR)),
    ];
    const [item] = accessAsOf(events, 'tickets:read', after(3 * HOUR));
    expect(item.grantedBy.ceiling).toEqual([expect.objectContaining({ type: 'ScopesGranted', version: 3 })]);
  });

  it('leaves out keys of a disabled or deleted account, and revoked, expired or narrowed keys', () => {
    const events = [
      created(ACCOUNT, T0, { allowedScopes: ['summaries:draft', 'tickets:read'] }),
      issued(K1, T0, { scopes: ['summaries:draft', 'tickets:read'] }),
      issued(K2, T0, { expiresAt: after(HOUR).toISOString() }),
      issued(K3, T0),
      stored(K3, 'KeyRevoked', { cause: 'manual', emergency: false }, after(HOUR)),
      stored(ACCOUNT, 'ServiceAccountDisabled', {}, after(2 * HOUR)),
      stored(ACCOUNT, 'ServiceAccountEnabled', {}, after(3 * HOUR)),
      stored(ACCOUNT, 'ScopeRevoked', { scope: 'tickets:read' }, after(4 * HOUR)),
      stored(K1, 'KeyScopesNarrowed', { removed: ['tickets:read'] }, after(4 * HOUR)),
      stored(ACCOUNT, 'ServiceAccountDeleted', {}, after(5 * HOUR)),
    ];
    expect(items(events, 'tickets:read', T0)).toHaveLength(3);
    expect(items(events, 'tickets:read', after(HOUR))).toEqual([`${K1}: active [tickets:read]`]);
    expect(items(events, 'tickets:read', after(2 * HOUR))).toEqual([]);
    expect(items(events, 'tickets:read', after(3 * HOUR))).toEqual([`${K1}: active [tickets:read]`]);
    expect(items(events, 'tickets:read', after(4 * HOUR))).toEqual([]);
    expect(items(events, 'summaries:draft', after(4 * HOUR))).toEqual([`${K1}: active [summaries:draft]`]);
    expect(items(events, 'summaries:draft', after(5 * HOUR))).toEqual([]);
  });

  it("leaves out a key whose scope is no longer on its account's ceiling", () => {
    // A history where the key kept a scope its account lost (as keys of older data could).
    const events = [
      created(ACCOUNT, T0),
      issued(K1, T0),
      stored(ACCOUNT, 'ScopeRevoked', { scope: 'tickets:read' }, after(HOUR)),
    ];
    expect(items(events, 'tickets:read', after(HOUR - 1))).toHaveLength(1);
    expect(items(events, 'tickets:read', after(HOUR))).toEqual([]);
  });

  it('keeps a rotated-out key during its grace only, and gives the new key the rotation as a grant', () => {
    const events = [
      created(ACCOUNT, T0),
      issued(K1, T0),
      stored(K1, 'KeyRotated', { replacedBy: K2, graceEndsAt: after(2 * HOUR).toISOString() }, after(HOUR)),
      issued(K2, after(HOUR), { replaces: K1 }),
    ];
    expect(items(events, 'tickets:read', after(HOUR))).toEqual([
      `${K1}: rotating [tickets:read]`,
      `${K2}: active [tickets:read]`,
    ]);
    expect(items(events, 'tickets:read', after(2 * HOUR))).toEqual([`${K2}: active [tickets:read]`]);
    const [k2] = accessAsOf(events, 'tickets:read', after(2 * HOUR));
    expect(k2.grantedBy.key.map((e) => [e.streamId, e.type, e.version, e.scopes])).toEqual([
      [K1, 'KeyRotated', 2, ['tickets:read']],
      [K2, 'KeyIssued', 1, ['tickets:read']],
    ]);
  });

  it('orders by account name, then oldest key first', () => {
    const events = [
      created(ACCOUNT, T0),
      created(OTHER_ACCOUNT, T0, { allowedScopes: ['tickets:read'] }),
      issued(K2, after(HOUR)),
      issued(K1, after(2 * HOUR)),
      issued(K3, T0, { serviceAccountId: OTHER_ACCOUNT }),
    ];
    // 'billing' sorts before 'digest'.
    expect(accessAsOf(events, 'tickets:read', after(DAY)).map((i) => i.key.id)).toEqual([K3, K2, K1]);
  });
});

describe('issuedKeyMayCover', () => {
  it('reads issued scopes with the matching verify uses', () => {
    expect(issuedKeyMayCover({ scopes: ['tickets:*'] }, 'tickets:read')).toBe(true);
    expect(issuedKeyMayCover({ scopes: ['tickets:read'] }, 'tickets:read')).toBe(true);
    expect(issuedKeyMayCover({ scopes: ['tickets:read'] }, 'tickets:*')).toBe(false);
    expect(issuedKeyMayCover({ scopes: ['tickets-archive:read'] }, 'tickets:read')).toBe(false);
  });
});
