import { systemClock } from '@keyward/core';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import { EventStore, FEED_START } from '.';

let t: TestDatabase;
beforeAll(async () => { t = await createTestDatabase(); });
afterAll(async () => { await t.drop(); });

it('appends and reads', async () => {
  const store = new EventStore(t.db, [], systemClock);
  const meta = { actor: { type: 'system' as const, id: 's', name: 's' }, reason: null, correlationId: 'c' };
  await store.append([{ tenantId: 't1', streamId: 's1', streamType: 'x', expectedVersion: 0, events: [{ type: 'A', data: { a: 1 } }] }], meta);
  await expect(store.append([{ tenantId: 't1', streamId: 's1', streamType: 'x', expectedVersion: 0, events: [{ type: 'A', data: {} }] }], meta)).rejects.toThrow('version 1');
  const feed = await store.readFeed(FEED_START);
  expect(feed).toHaveLength(1);
  expect(feed[0].chainSeq).toBe(1n);
});
