import { sql } from 'kysely';
import { EventStore } from '@keyward/event-store';
import { inlineProjections } from '@keyward/projections';
import { bearer, createTenant, startTestApi, type TestApi } from '../../../test/support/api';
import { sweepExpiredKeys } from './expiry-sweep';

/** The expiry sweep against the real database, with the test's clock: no sleeping. */
let api: TestApi;
let store: EventStore;
const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  api = await startTestApi();
  store = new EventStore(api.database.db, inlineProjections, api.clock);
});
afterAll(async () => {
  await api?.close();
});

let seq = 0;
async function accountWithKeys(days: number[]) {
  seq += 1;
  const t = await createTenant(api, `sweep-${seq}`);
  const admin = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: `acct-${seq}`,
      environment: 'staging',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  const keys: { id: string }[] = [];
  for (const d of days) {
    const key = await api.http
      .post(`/v1/service-accounts/${account.body.id}/keys`)
      .set(admin)
      .send({ name: `k${d}`, scopes: ['a:read'], expiresInDays: d })
      .expect(201);
    keys.push({ id: key.body.id });
  }
  return { admin, accountId: account.body.id as string, keys };
}

async function expiredEvents(keyId: string): Promise<number> {
  const row = await api.database.db
    .selectFrom('events')
    .select(sql<string>`count(*)`.as('n'))
    .where('stream_id', '=', keyId)
    .where('type', '=', 'KeyExpired')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

it('writes KeyExpired for keys past expiry or grace, once, and leaves live, revoked and expired keys alone', async () => {
  const s = await accountWithKeys([1, 30, 2]);
  const [short, long, revokedKey] = s.keys;
  await api.http.post(`/v1/keys/${revokedKey.id}/revoke`).set(s.admin).send({}).expect(200);
  // A rotation with a one-hour grace: the old key expires when the grace ends.
  const rotated = await api.http
    .post(`/v1/keys/${long.id}/rotate`)
    .set(s.admin)
    .send({ gracePeriodSeconds: 3600 })
    .expect(201);

  api.clock.advance(DAY + 1);
  const first = await sweepExpiredKeys(api.database.db, store, api.clock.now(), { batchSize: 2 });
  expect(first.expired).toBeGreaterThanOrEqual(2);
  expect(await expiredEvents(short.id)).toBe(1);
  expect(await expiredEvents(long.id)).toBe(1); // its grace ended after an hour
  expect(await expiredEvents(revokedKey.id)).toBe(0);
  expect(await expiredEvents(rotated.body.id)).toBe(0);

  const shown = await api.http.get(`/v1/keys/${short.id}`).set(s.admin).expect(200);
  expect(shown.body.status).toBe('expired');
  const history = await api.http.get(`/v1/keys/${short.id}/history`).set(s.admin).expect(200);
  expect(history.body.items.at(-1)).toEqual(
    expect.objectContaining({
      type: 'KeyExpired',
      actor: { type: 'system', id: 'expiry-sweep', name: 'expiry sweep' },
    }),
  );

  // Again: nothing more to write.
  const again = await sweepExpiredKeys(api.database.db, store, api.clock.now());
  expect(again.expired).toBe(0);
  expect(await expiredEvents(short.id)).toBe(1);
});

it('two sweeps at once expire every key exactly once', async () => {
  const s = await accountWithKeys([1, 1, 1, 1, 1, 1]);
  api.clock.advance(DAY + 1);
  const results = await Promise.all([
    sweepExpiredKeys(api.database.db, store, api.clock.now(), { batchSize: 3 }),
    sweepExpiredKeys(api.database.db, store, api.clock.now(), { batchSize: 3 }),
    sweepExpiredKeys(api.database.db, store, api.clock.now(), { batchSize: 3 }),
  ]);
  for (const key of s.keys) expect(await expiredEvents(key.id)).toBe(1);
  expect(results.reduce((n, r) => n + r.expired, 0)).toBeGreaterThanOrEqual(s.keys.length);
});
