import { EventStore } from '@keyward/event-store';
import type { RotateKeyJob } from '@keyward/jobs';
import { inlineProjections } from '@keyward/projections';
import { raiseSignals } from '@keyward/signals';
import { bearer, createTenant, newServerErrors, startTestApi, type TestApi } from '../../../test/support/api';
import { sweepHygiene } from './hygiene-sweep';

/**
 * The hygiene sweep against the real database, on the test's clock (never sleeping): rotation
 * due and overdue, unused keys (signal, revocation, resolving on use), orphaned accounts.
 * Rotations are handed to a scheduler the test reads; the queue itself is driven in the worker's
 * own test (scheduled-rotation.e2e).
 */
let api: TestApi;
let store: EventStore;
const DAY = 24 * 3600 * 1000;
const scheduled: RotateKeyJob[] = [];

beforeAll(async () => {
  api = await startTestApi({ KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' });
  store = new EventStore(api.database.db, inlineProjections, api.clock);
});
afterAll(async () => {
  await api?.close();
});
afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
});

const sweep = () =>
  sweepHygiene(
    api.database.db,
    store,
    { schedule: async (jobs) => void scheduled.push(...jobs) },
    api.clock.now(),
  );

let seq = 0;
async function tenant() {
  seq += 1;
  const t = await createTenant(api, `hyg-${seq}`);
  return { ...t, auth: bearer(t.admin) };
}

type Auth = { Authorization: string };

async function account(auth: Auth, body: Record<string, unknown> = {}) {
  seq += 1;
  const res = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: `acct-${seq}`,
      environment: 'staging',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
      ...body,
    })
    .expect(201);
  return res.body as { id: string; secretDelivery?: { url: string; signingSecret?: string } };
}

async function key(auth: Auth, accountId: string, expiresInDays = 180) {
  const res = await api.http
    .post(`/v1/service-accounts/${accountId}/keys`)
    .set(auth)
    .send({ name: `k-${++seq}`, scopes: ['a:read'], expiresInDays })
    .expect(201);
  return res.body as { id: string; secret: string; prefix: string };
}

async function signals(auth: Auth, query: string) {
  const res = await api.http.get(`/v1/signals?${query}`).set(auth).expect(200);
  return res.body.items as {
    id: string;
    type: string;
    status: string;
    severity: string;
    keyId: string | null;
    count: number;
    detail: Record<string, unknown>;
  }[];
}

describe('rotation policy', () => {
  const policy = { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: false };

  it('raises ROTATION_DUE notifyBeforeDays before maxKeyAgeDays, not a moment sooner, and once', async () => {
    const t = await tenant();
    const a = await account(t.auth, { rotationPolicy: policy, environment: 'production' });
    const k = await key(t.auth, a.id, 90);
    const start = api.clock.now().getTime();

    api.clock.set(new Date(start + 23 * DAY - 1));
    await sweep();
    expect(await signals(t.auth, `serviceAccountId=${a.id}`)).toEqual([]);

    api.clock.set(new Date(start + 23 * DAY));
    const first = await sweep();
    expect(first.raised.ROTATION_DUE).toBeGreaterThanOrEqual(1);
    const [due] = await signals(t.auth, `serviceAccountId=${a.id}`);
    expect(due).toMatchObject({
      type: 'ROTATION_DUE',
      status: 'open',
      severity: 'high',
      keyId: k.id,
      count: 1,
    });
    expect(due.detail).toMatchObject({ prefix: k.prefix, maxKeyAgeDays: 30, notifyBeforeDays: 7 });

    // Every later run while it is due: neither repeated nor counted up.
    api.clock.advance(DAY);
    await sweep();
    await sweep();
    expect(await signals(t.auth, `serviceAccountId=${a.id}`)).toEqual([
      expect.objectContaining({ id: due.id, count: 1 }),
    ]);
    expect(scheduled.filter((j) => j.keyId === k.id)).toEqual([]);
  });

  it('raises ROTATION_OVERDUE at maxKeyAgeDays, and resolves both once the key is rotated', async () => {
    const t = await tenant();
    const a = await account(t.auth, { rotationPolicy: policy });
    const k = await key(t.auth, a.id, 90);
    const start = api.clock.now().getTime();
    api.clock.set(new Date(start + 30 * DAY - 1));
    await sweep();
    expect((await signals(t.auth, `serviceAccountId=${a.id}`)).map((s) => s.type)).toEqual(['ROTATION_DUE']);
    api.clock.set(new Date(start + 30 * DAY));
    await sweep();
    const open = await signals(t.auth, `serviceAccountId=${a.id}&status=open`);
    expect(open.map((s) => s.type).sort()).toEqual(['ROTATION_DUE', 'ROTATION_OVERDUE']);
    expect(open.find((s) => s.type === 'ROTATION_OVERDUE')!.severity).toBe('medium'); // staging

    await api.http.post(`/v1/keys/${k.id}/rotate`).set(t.auth).send({ gracePeriodSeconds: 3600 }).expect(201);
    const result = await sweep();
    expect(result.resolved).toBeGreaterThanOrEqual(2);
    expect(await signals(t.auth, `serviceAccountId=${a.id}&status=open`)).toEqual([]);
    const resolved = await signals(t.auth, `serviceAccountId=${a.id}&status=resolved`);
    expect(resolved).toHaveLength(2);
    // The new key is young: nothing more is raised for it.
    await sweep();
    expect(await signals(t.auth, `serviceAccountId=${a.id}&status=open`)).toEqual([]);
  });

  it('hands a due key of an auto-rotating account with secretDelivery to the rotations queue instead of a signal', async () => {
    const t = await tenant();
    const a = await account(t.auth, {
      rotationPolicy: { ...policy, autoRotate: true },
      secretDelivery: { url: 'http://127.0.0.1:9/keys' },
    });
    const k = await key(t.auth, a.id, 90);
    api.clock.advance(23 * DAY);
    await sweep();
    await sweep();
    const jobs = scheduled.filter((j) => j.keyId === k.id);
    // Offered on each run with the same version, so the queue's job id makes it one job.
    expect(jobs.length).toBe(2);
    expect(jobs[0]).toEqual({ tenantId: t.tenantId, keyId: k.id, version: 1 });
    expect(jobs[1]).toEqual(jobs[0]);
    expect(await signals(t.auth, `serviceAccountId=${a.id}`)).toEqual([]);
  });

  it('tells a person instead while an earlier automatic rotation failure is unresolved', async () => {
    const t = await tenant();
    const a = await account(t.auth, {
      rotationPolicy: { ...policy, autoRotate: true },
      secretDelivery: { url: 'http://127.0.0.1:9/keys' },
    });
    const k = await key(t.auth, a.id, 90);
    await raiseSignals(
      api.database.db,
      store,
      [{ tenantId: t.tenantId, type: 'ROTATION_FAILED', serviceAccountId: a.id, keyId: k.id, detail: {} }],
      { actor: { type: 'system', id: 'test', name: 'test' }, reason: null, correlationId: 'test' },
    );
    api.clock.advance(23 * DAY);
    await sweep();
    expect(scheduled.filter((j) => j.keyId === k.id)).toEqual([]);
    expect((await signals(t.auth, `serviceAccountId=${a.id}&type=ROTATION_DUE`)).length).toBe(1);
  });

  it('applies to accounts with abuseDetection off: rotation is hygiene, not behaviour', async () => {
    const t = await tenant();
    const a = await account(t.auth, { rotationPolicy: policy, abuseDetection: false });
    await key(t.auth, a.id, 90);
    api.clock.advance(23 * DAY);
    await sweep();
    expect((await signals(t.auth, `serviceAccountId=${a.id}`)).map((s) => s.type)).toEqual(['ROTATION_DUE']);
  });
});

describe('unused keys', () => {
  it('raises UNUSED_KEY unusedAfterDays after creation for a never-used key, resolves it on use, and raises anew after another idle spell', async () => {
    const t = await tenant();
    await api.http.patch('/v1/policy').set(t.auth).send({ unusedAfterDays: 10 }).expect(200);
    const a = await account(t.auth);
    const k = await key(t.auth, a.id);
    const start = api.clock.now().getTime();

    api.clock.set(new Date(start + 10 * DAY - 1));
    await sweep();
    expect(await signals(t.auth, `type=UNUSED_KEY`)).toEqual([]);
    api.clock.set(new Date(start + 10 * DAY));
    await sweep();
    await sweep();
    const [unused] = await signals(t.auth, `type=UNUSED_KEY`);
    expect(unused).toMatchObject({ keyId: k.id, status: 'open', count: 1 });
    expect(unused.detail).toMatchObject({
      prefix: k.prefix,
      lastUsedAt: null,
      unusedAfterDays: 10,
      revoked: false,
    });

    // Used again (what the usage flush writes): the next run resolves it.
    api.clock.advance(DAY);
    await api.database.db
      .insertInto('key_usage')
      .values({ key_id: k.id, last_used_at: api.clock.now() })
      .execute();
    await sweep();
    expect(await signals(t.auth, `type=UNUSED_KEY&status=resolved`)).toEqual([
      expect.objectContaining({ id: unused.id }),
    ]);
    await sweep();
    expect(await signals(t.auth, `type=UNUSED_KEY&status=open`)).toEqual([]);

    // Ten idle days after that last use: a new episode, a new signal.
    api.clock.advance(10 * DAY);
    await sweep();
    const open = await signals(t.auth, `type=UNUSED_KEY&status=open`);
    expect(open).toHaveLength(1);
    expect(open[0].id).not.toBe(unused.id);
  });

  it('does not raise again for an episode a person already resolved', async () => {
    const t = await tenant();
    await api.http.patch('/v1/policy').set(t.auth).send({ unusedAfterDays: 5 }).expect(200);
    const a = await account(t.auth);
    await key(t.auth, a.id);
    api.clock.advance(5 * DAY);
    await sweep();
    const [unused] = await signals(t.auth, `type=UNUSED_KEY`);
    await api.http
      .post(`/v1/signals/${unused.id}/resolve`)
      .set(t.auth)
      .send({ note: 'kept on purpose' })
      .expect(200);
    api.clock.advance(DAY);
    await sweep();
    expect(await signals(t.auth, `type=UNUSED_KEY&status=open`)).toEqual([]);
  });

  it('revokes with reason unused after revokeUnusedAfterDays; verify then answers REVOKED', async () => {
    const t = await tenant();
    await api.http
      .patch('/v1/policy')
      .set(t.auth)
      .send({ unusedAfterDays: 5, revokeUnusedAfterDays: 8 })
      .expect(200);
    const a = await account(t.auth);
    const idle = await key(t.auth, a.id);
    const used = await key(t.auth, a.id);
    const verifier = bearer(await t.token('verifier'));
    api.clock.advance(6 * DAY);
    await api.database.db
      .insertInto('key_usage')
      .values({ key_id: used.id, last_used_at: api.clock.now() })
      .execute();
    api.clock.advance(2 * DAY);
    const result = await sweep();
    expect(result.revokedUnused).toBe(1);

    const shown = await api.http.get(`/v1/keys/${idle.id}`).set(t.auth).expect(200);
    expect(shown.body.status).toBe('revoked');
    const history = await api.http.get(`/v1/keys/${idle.id}/history`).set(t.auth).expect(200);
    expect(history.body.items.at(-1)).toMatchObject({
      type: 'KeyRevoked',
      data: { cause: 'unused' },
      actor: { type: 'system', id: 'hygiene-sweep' },
    });
    const verdict = await api.http.post('/v1/verify').set(verifier).send({ key: idle.secret }).expect(200);
    expect(verdict.body).toEqual({ valid: false, code: 'REVOKED' });
    expect((await api.http.get(`/v1/keys/${used.id}`).set(t.auth).expect(200)).body.status).toBe('active');

    // Once, however often the sweep runs.
    expect((await sweep()).revokedUnused).toBe(0);
  });
});

describe('orphaned accounts', () => {
  it('raises ORPHANED_ACCOUNT for an active account with no live key and no use, and resolves it when it gets a key', async () => {
    const t = await tenant();
    await api.http.patch('/v1/policy').set(t.auth).send({ unusedAfterDays: 7 }).expect(200);
    const orphan = await account(t.auth);
    const held = await account(t.auth);
    await key(t.auth, held.id);
    const disabled = await account(t.auth);
    await api.http.post(`/v1/service-accounts/${disabled.id}/disable`).set(t.auth).send({}).expect(200);

    api.clock.advance(7 * DAY);
    await sweep();
    await sweep();
    const found = await signals(t.auth, `type=ORPHANED_ACCOUNT`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ keyId: null, status: 'open', count: 1, severity: 'medium' });
    expect((await signals(t.auth, `serviceAccountId=${orphan.id}`)).map((s) => s.type)).toEqual([
      'ORPHANED_ACCOUNT',
    ]);

    await key(t.auth, orphan.id);
    await sweep();
    expect(await signals(t.auth, `type=ORPHANED_ACCOUNT&status=open`)).toEqual([]);
  });
});

describe('safety', () => {
  it('two sweeps at once raise each signal once', async () => {
    const t = await tenant();
    await api.http.patch('/v1/policy').set(t.auth).send({ unusedAfterDays: 3 }).expect(200);
    const a = await account(t.auth, {
      rotationPolicy: { maxKeyAgeDays: 4, notifyBeforeDays: 1, autoRotate: false },
    });
    for (let i = 0; i < 5; i++) await key(t.auth, a.id);
    api.clock.advance(3 * DAY);
    await Promise.all([sweep(), sweep(), sweep()]);
    const all = await signals(t.auth, `serviceAccountId=${a.id}&limit=100`);
    expect(all.filter((s) => s.type === 'UNUSED_KEY')).toHaveLength(5);
    expect(all.filter((s) => s.type === 'ROTATION_DUE')).toHaveLength(5);
    expect(all.every((s) => s.count === 1)).toBe(true);
  });
});
