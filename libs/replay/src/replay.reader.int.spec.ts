import { ManualClock } from '@keyward/core';
import { EventStore, type EventMetadata, type NewEvent } from '@keyward/event-store';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import { ReplayReader } from './replay.reader';

/**
 * ReplayReader against a real PostgreSQL. The store runs no projections here, so every read-model
 * table stays empty: whatever the reader answers, it rebuilt from events.
 */

const T0 = new Date('2026-03-01T09:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const after = (ms: number) => new Date(T0.getTime() + ms);

const ACCOUNT = 'sa_AAAAAAAAAAAAAAAAAAA1';
const OTHER = 'sa_BBBBBBBBBBBBBBBBBBB2';

let t: TestDatabase;
let store: EventStore;
let reader: ReplayReader;
const clock = new ManualClock(T0);
const meta: EventMetadata = {
  actor: { type: 'operator', id: 'op_alice', name: 'alice' },
  reason: null,
  correlationId: 'corr-int',
};

beforeAll(async () => {
  t = await createTestDatabase();
  store = new EventStore(t.db, [], clock);
  reader = new ReplayReader(t.db);
});
afterAll(async () => {
  await t.drop();
});

function accountCreated(id: string, tenantId: string, allowedScopes: string[]): NewEvent {
  return {
    type: 'ServiceAccountCreated',
    data: {
      id,
      tenantId,
      name: `account-${id.slice(-1)}`,
      environment: 'production',
      description: null,
      intendedScope: null,
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes,
      boundaries: [],
      allowedCidrs: [],
      abuseDetection: true,
      rotationPolicy: null,
      secretDelivery: null,
    },
  };
}

function keyIssued(id: string, tenantId: string, accountId: string, scopes: string[]): NewEvent {
  return {
    type: 'KeyIssued',
    data: {
      id,
      tenantId,
      serviceAccountId: accountId,
      name: id,
      prefix: `kw_live_${id.slice(4)}`,
      secretHash: '0'.repeat(64),
      environment: 'production',
      scopes,
      boundaries: [],
      allowedCidrs: [],
      rateLimit: null,
      expiresAt: new Date(clock.now().getTime() + 90 * DAY).toISOString(),
      replaces: null,
    },
  };
}

async function append(tenantId: string, streamId: string, streamType: string, events: NewEvent[]) {
  await store.append([{ tenantId, streamId, streamType, expectedVersion: 'any', events }], meta);
}

describe('ReplayReader', () => {
  beforeAll(async () => {
    await append('acme', ACCOUNT, 'service-account', [accountCreated(ACCOUNT, 'acme', ['tickets:*'])]);
    await append('acme', OTHER, 'service-account', [accountCreated(OTHER, 'acme', ['tickets:read'])]);
    clock.advance(HOUR);
    await append('acme', 'key_AAAAAAAAAAAAAAAAAAA1', 'key', [
      keyIssued('key_AAAAAAAAAAAAAAAAAAA1', 'acme', ACCOUNT, ['tickets:*']),
    ]);
    await append('acme', 'key_BBBBBBBBBBBBBBBBBBB2', 'key', [
      keyIssued('key_BBBBBBBBBBBBBBBBBBB2', 'acme', OTHER, ['tickets:read']),
    ]);
    // Another tenant's key stream whose payload names this tenant's account: never this account's.
    await append('evil', 'key_CCCCCCCCCCCCCCCCCCC3', 'key', [
      keyIssued('key_CCCCCCCCCCCCCCCCCCC3', 'evil', ACCOUNT, ['tickets:read']),
    ]);
    clock.advance(HOUR);
    // A long history: 10,000 changes, appended in batches the size one INSERT can carry.
    for (let batch = 0; batch < 10; batch++) {
      const events = Array.from({ length: 1_000 }, (_, i) => ({
        type: 'ServiceAccountUpdated',
        data: { changes: { description: `change ${batch * 1_000 + i + 1}` } },
      }));
      await append('acme', ACCOUNT, 'service-account', events);
      clock.advance(HOUR);
    }
  });

  it('rebuilds an account with its own keys of its own tenant from events alone', async () => {
    const rows = await t.db.selectFrom('service_accounts').select('id').execute();
    expect(rows).toEqual([]);

    const state = await reader.accountAsOf('acme', ACCOUNT, clock.now());
    expect(state!.account.version).toBe(10_001);
    expect(state!.account.description).toBe('change 10000');
    expect(state!.keys.map((k) => k.key.id)).toEqual(['key_AAAAAAAAAAAAAAAAAAA1']);
  });

  it('stops at the time asked for, in the middle of a long history', async () => {
    // The fifth batch was appended at T0 + 6h.
    const state = await reader.accountAsOf('acme', ACCOUNT, after(6 * HOUR));
    expect(state!.account.version).toBe(5_001);
    expect(state!.account.description).toBe('change 5000');
    expect((await reader.accountAsOf('acme', ACCOUNT, after(HOUR - 1)))!.keys).toEqual([]);
  });

  it('finds nothing of another tenant, and nothing for an id that is not an account id', async () => {
    expect(await reader.accountAsOf('evil', ACCOUNT, clock.now())).toBeNull();
    expect(await reader.accountAsOf('acme', 'key_AAAAAAAAAAAAAAAAAAA1', clock.now())).toBeNull();
    expect(await reader.accountAsOf('acme', "sa_' or 1=1 --", clock.now())).toBeNull();
  });

  it("answers access from the tenant's own events", async () => {
    const read = await reader.accessAsOf('acme', 'tickets:read', clock.now());
    expect(read.map((i) => [i.account.id, i.key.id])).toEqual([
      [ACCOUNT, 'key_AAAAAAAAAAAAAAAAAAA1'],
      [OTHER, 'key_BBBBBBBBBBBBBBBBBBB2'],
    ]);
    expect(read[0].grantedBy.ceiling).toEqual([
      expect.objectContaining({ type: 'ServiceAccountCreated', version: 1, scopes: ['tickets:*'], ...meta }),
    ]);
    expect(read[0].grantedBy.key).toEqual([
      expect.objectContaining({ type: 'KeyIssued', streamId: 'key_AAAAAAAAAAAAAAAAAAA1', ...meta }),
    ]);
    expect((await reader.accessAsOf('acme', 'tickets:write', clock.now())).map((i) => i.key.id)).toEqual([
      'key_AAAAAAAAAAAAAAAAAAA1',
    ]);
    expect(await reader.accessAsOf('acme', 'tickets:read', after(HOUR - 1))).toEqual([]);
    // The other tenant's key names an account that tenant does not have: nothing to answer.
    expect(await reader.accessAsOf('evil', 'tickets:read', clock.now())).toEqual([]);
  });
});
