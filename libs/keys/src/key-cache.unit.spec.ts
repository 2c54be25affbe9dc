import { ManualClock } from '@keyward/core';
import { KeyCache, invalidationFor } from './key-cache';
import type { KeyRecord } from './verify';

function record(keyId: string, accountId: string): KeyRecord {
  return {
    key: {
      id: keyId,
      tenantId: 'acme',
      serviceAccountId: accountId,
      secretHash: '00',
      environment: 'production',
      scopes: ['tickets:read'],
      boundaries: [],
      allowedCidrs: [],
      rateLimit: null,
      expiresAt: '2027-01-01T00:00:00.000Z',
      graceEndsAt: null,
      revokedAt: null,
      expiredAt: null,
    },
    account: {
      id: accountId,
      name: accountId,
      environment: 'production',
      status: 'active',
      boundaries: [],
      allowedCidrs: [],
    },
  };
}

/** A loader that counts its calls and answers what the "database" holds now. */
function store(rows: Record<string, KeyRecord | null>) {
  const load = (keyId: string) => () => {
    load.calls++;
    return Promise.resolve(rows[keyId] ?? null);
  };
  load.calls = 0;
  return load;
}

function cache(clock = new ManualClock('2026-03-01T09:00:00Z'), ttlMs = 2_000, maxEntries = 100) {
  const c = new KeyCache(clock, { ttlMs, maxEntries });
  c.enable();
  return c;
}

describe('KeyCache', () => {
  it('loads every time while disabled (no invalidation channel)', async () => {
    const c = new KeyCache(new ManualClock(), { ttlMs: 2_000, maxEntries: 10 });
    const load = store({ key_a: record('key_a', 'sa_1') });
    await c.get('key_a', load('key_a'));
    await c.get('key_a', load('key_a'));
    expect(load.calls).toBe(2);
    expect(c.size).toBe(0);
  });

  it('stays disabled with a lifetime of 0, even when enabled', async () => {
    const c = new KeyCache(new ManualClock(), { ttlMs: 0, maxEntries: 10 });
    c.enable();
    const load = store({});
    await c.get('key_a', load('key_a'));
    await c.get('key_a', load('key_a'));
    expect(load.calls).toBe(2);
  });

  it('answers from memory within the lifetime and loads again after it', async () => {
    const clock = new ManualClock('2026-03-01T09:00:00Z');
    const c = cache(clock);
    const load = store({ key_a: record('key_a', 'sa_1') });
    expect((await c.get('key_a', load('key_a')))?.key.id).toBe('key_a');
    clock.advance(1_999);
    expect((await c.get('key_a', load('key_a')))?.key.id).toBe('key_a');
    expect(load.calls).toBe(1);
    clock.advance(1);
    await c.get('key_a', load('key_a'));
    expect(load.calls).toBe(2);
  });

  it('keeps "no such key" too, so a flood of unknown ids does not reach the database each time', async () => {
    const c = cache();
    const load = store({});
    expect(await c.get('key_x', load('key_x'))).toBeNull();
    expect(await c.get('key_x', load('key_x'))).toBeNull();
    expect(load.calls).toBe(1);
  });

  it('drops an invalidated key, and every key of an invalidated account, and nothing else', async () => {
    const c = cache();
    const rows = {
      key_a: record('key_a', 'sa_1'),
      key_b: record('key_b', 'sa_1'),
      key_c: record('key_c', 'sa_2'),
    };
    const load = store(rows);
    for (const id of Object.keys(rows)) await c.get(id, load(id));
    expect(load.calls).toBe(3);

    c.invalidate({ keys: ['key_c'], accounts: [], operators: [] });
    await c.get('key_c', load('key_c'));
    expect(load.calls).toBe(4);

    c.invalidate({ keys: [], accounts: ['sa_1'], operators: [] });
    for (const id of Object.keys(rows)) await c.get(id, load(id));
    expect(load.calls).toBe(6); // key_a and key_b again; key_c still cached
  });

  it('answers but does not keep a load that an invalidation overtook', async () => {
    const c = cache();
    let release!: (value: KeyRecord) => void;
    const slow = c.get('key_a', () => new Promise<KeyRecord>((resolve) => (release = resolve)));
    c.invalidate({ keys: ['key_a'], accounts: [], operators: [] });
    release(record('key_a', 'sa_1'));
    expect((await slow)?.key.id).toBe('key_a');
    expect(c.size).toBe(0);
  });

  it('does not keep a load that finished after the cache was disabled', async () => {
    const c = cache();
    let release!: (value: KeyRecord) => void;
    const slow = c.get('key_a', () => new Promise<KeyRecord>((resolve) => (release = resolve)));
    c.disable();
    c.enable();
    release(record('key_a', 'sa_1'));
    await slow;
    expect(c.size).toBe(0);
  });

  it('forgets everything when disabled', async () => {
    const c = cache();
    const load = store({ key_a: record('key_a', 'sa_1') });
    await c.get('key_a', load('key_a'));
    c.disable();
    expect(c.size).toBe(0);
    c.enable();
    await c.get('key_a', load('key_a'));
    expect(load.calls).toBe(2);
  });

  it('holds at most maxEntries, letting the oldest go first', async () => {
    const c = cache(undefined, 2_000, 2);
    const load = store({});
    await c.get('key_1', load('key_1'));
    await c.get('key_2', load('key_2'));
    await c.get('key_3', load('key_3'));
    expect(c.size).toBe(2);
    await c.get('key_2', load('key_2'));
    await c.get('key_3', load('key_3'));
    expect(load.calls).toBe(3);
    await c.get('key_1', load('key_1'));
    expect(load.calls).toBe(4);
  });
});

describe('invalidationFor', () => {
  it('names each key, account and operator stream once and ignores every other stream', () => {
    expect(
      invalidationFor([
        { streamType: 'key', streamId: 'key_a' },
        { streamType: 'key', streamId: 'key_a' },
        { streamType: 'service-account', streamId: 'sa_1' },
        { streamType: 'tenant-policy', streamId: 'acme' },
        { streamType: 'operator', streamId: 'op_1' },
        { streamType: 'operator', streamId: 'op_1' },
      ]),
    ).toEqual({ keys: ['key_a'], accounts: ['sa_1'], operators: ['op_1'] });
  });

  it('is null when nothing the verifier or the auth guard reads changed', () => {
    expect(invalidationFor([{ streamType: 'tenant', streamId: 'acme' }])).toBeNull();
    expect(invalidationFor([])).toBeNull();
  });
});
