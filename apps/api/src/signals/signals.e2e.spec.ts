import { CommandBus } from '@nestjs/cqrs';
import type { Response } from 'supertest';
import type { CommandContext } from '@keyward/auth';
import { RaiseSignalCommand, type RaiseResult, type SignalType } from '@keyward/signals';
import {
  bearer,
  createTenant,
  eventCount,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TenantFixture,
  type TestApi,
} from '../../../../test/support/api';

/** API.md "Usage, signals, reports": GET /v1/signals, acknowledge, resolve, and how signals are raised. */
let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

type Env = 'production' | 'staging' | 'development';

async function accountWithKey(
  t: TenantFixture,
  name: string,
  environment: Env = 'production',
  abuseDetection = true,
): Promise<{ accountId: string; keyId: string; secret: string }> {
  const account = await api.http
    .post('/v1/service-accounts')
    .set(bearer(t.admin))
    .send({
      name,
      environment,
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['tickets:read'],
      abuseDetection,
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(bearer(t.admin))
    .send({ name: 'worker', scopes: ['tickets:read'] })
    .expect(201);
  return { accountId: account.body.id, keyId: key.body.id, secret: key.body.secret };
}

/** A detector in the worker raises signals as a system caller of the tenant. */
function raise(
  tenantId: string,
  type: SignalType,
  accountId: string,
  keyId: string | null,
  detail: Record<string, unknown> = {},
): Promise<RaiseResult> {
  const ctx: CommandContext = {
    caller: { kind: 'system', id: 'detector', name: 'test detector', tenantId },
    correlationId: 'signals-e2e',
  };
  return api.app
    .get(CommandBus)
    .execute(new RaiseSignalCommand(ctx, { type, serviceAccountId: accountId, keyId, detail }));
}

describe('raising', () => {
  let t: TenantFixture;
  beforeAll(async () => {
    t = await createTenant(api, 'sig-raise');
  });

  it('raises a signal once and counts it after that, moving lastSeenAt', async () => {
    const { accountId, keyId } = await accountWithKey(t, 'counted');
    const first = await raise(t.tenantId, 'DENIAL_BURST', accountId, keyId, { denied: 40 });
    expect(first).toEqual({ outcome: 'raised', signalId: expect.stringMatching(/^sig_/) });
    api.clock.advance(60_000);
    const second = await raise(t.tenantId, 'DENIAL_BURST', accountId, keyId, { denied: 12 });
    expect(second).toEqual({ outcome: 'counted', signalId: first.signalId });

    const res = await api.http
      .get(`/v1/signals?serviceAccountId=${accountId}`)
      .set(bearer(t.admin))
      .expect(200);
    expect(res.body).toEqual({
      items: [
        expect.objectContaining({
          id: first.signalId,
          type: 'DENIAL_BURST',
          severity: 'high',
          status: 'open',
          serviceAccount: { id: accountId, name: 'counted', environment: 'production' },
          keyId,
          detail: { denied: 12 },
          count: 2,
        }),
      ],
      nextCursor: null,
    });
    const [item] = res.body.items;
    expect(Date.parse(item.lastSeenAt) - Date.parse(item.firstSeenAt)).toBe(60_000);
  });

  it('ends five racing raises of one signal with one signal counted five times', async () => {
    const { accountId, keyId } = await accountWithKey(t, 'raced');
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => raise(t.tenantId, 'VOLUME_SPIKE', accountId, keyId, { n: i })),
    );
    const ids = new Set(results.map((r) => r.signalId));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.outcome === 'raised')).toHaveLength(1);

    const res = await api.http
      .get(`/v1/signals?serviceAccountId=${accountId}`)
      .set(bearer(t.admin))
      .expect(200);
    expect(res.body.items).toHaveLength(1);
    expect(res.body.items[0].count).toBe(5);
    const events = await api.database.db
      .selectFrom('events')
      .select('type')
      .where('stream_id', '=', [...ids][0]!)
      .orderBy('stream_version')
      .execute();
    expect(events.map((e) => e.type)).toEqual(['SignalRaised', ...Array(4).fill('SignalRecurred')]);
  });

  it('sets severity by environment: staging medium, development low', async () => {
    const staging = await accountWithKey(t, 'sev-staging', 'staging');
    const dev = await accountWithKey(t, 'sev-dev', 'development');
    await raise(t.tenantId, 'NEW_SOURCE', staging.accountId, staging.keyId);
    await raise(t.tenantId, 'NEW_SOURCE', dev.accountId, dev.keyId);
    const medium = await api.http.get('/v1/signals?severity=medium').set(bearer(t.admin)).expect(200);
    expect(medium.body.items.map((s: { keyId: string }) => s.keyId)).toEqual([staging.keyId]);
    const low = await api.http.get('/v1/signals?severity=low').set(bearer(t.admin)).expect(200);
    expect(low.body.items.map((s: { keyId: string }) => s.keyId)).toEqual([dev.keyId]);
  });

  it('raises no behavioural signal for an account with abuseDetection off, but hygiene ones', async () => {
    const { accountId, keyId } = await accountWithKey(t, 'quiet', 'production', false);
    const before = await eventCount(api);
    expect(await raise(t.tenantId, 'SCOPE_CREEP', accountId, keyId)).toEqual({
      outcome: 'suppressed',
      signalId: null,
    });
    expect(await eventCount(api)).toBe(before);
    expect(await raise(t.tenantId, 'ROTATION_DUE', accountId, keyId)).toMatchObject({ outcome: 'raised' });
    expect(await raise(t.tenantId, 'ORPHANED_ACCOUNT', accountId, null)).toMatchObject({ outcome: 'raised' });
    const res = await api.http
      .get(`/v1/signals?serviceAccountId=${accountId}`)
      .set(bearer(t.admin))
      .expect(200);
    expect(res.body.items.map((s: { type: string }) => s.type).sort()).toEqual([
      'ORPHANED_ACCOUNT',
      'ROTATION_DUE',
    ]);
  });

  it("refuses to raise on another tenant's account or a key of another account", async () => {
    const other = await createTenant(api, 'sig-raise-other');
    const theirs = await accountWithKey(other, 'theirs');
    const mine = await accountWithKey(t, 'mine');
    await expect(raise(t.tenantId, 'UNUSED_KEY', theirs.accountId, theirs.keyId)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(raise(t.tenantId, 'UNUSED_KEY', mine.accountId, theirs.keyId)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

describe('KEY_EXPOSED', () => {
  it('is raised in the same commit as the exposure, and counted on a second report', async () => {
    const t = await createTenant(api, 'sig-exposed');
    const { accountId, keyId, secret } = await accountWithKey(t, 'leaky', 'staging');
    await api.http
      .post('/v1/exposures')
      .set(bearer(t.admin))
      .send({ key: secret, url: 'https://gist.example/abc', source: 'pastebin-scan' })
      .expect(200);

    const res = await api.http.get('/v1/signals?type=KEY_EXPOSED').set(bearer(t.admin)).expect(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({
        type: 'KEY_EXPOSED',
        severity: 'medium',
        status: 'open',
        serviceAccount: { id: accountId, name: 'leaky', environment: 'staging' },
        keyId,
        detail: {
          url: 'https://gist.example/abc',
          source: 'pastebin-scan',
          prefix: expect.stringMatching(/^kw_stage_/),
        },
        count: 1,
      }),
    ]);
    const signalId = res.body.items[0].id as string;
    const events = await api.database.db
      .selectFrom('events')
      .select(['stream_id', 'type', 'transaction_id'])
      .where('stream_id', 'in', [keyId, signalId])
      .where('type', 'in', ['KeyExposed', 'SignalRaised'])
      .execute();
    expect(events).toHaveLength(2);
    expect(events[0].transaction_id).toBe(events[1].transaction_id);

    await api.http
      .post('/v1/exposures')
      .set(bearer(t.admin))
      .send({ key: secret, url: 'https://gist.example/def', source: 'github' })
      .expect(200);
    const again = await api.http.get(`/v1/signals/${signalId}`).set(bearer(t.admin)).expect(200);
    expect(again.body).toMatchObject({
      count: 2,
      detail: { url: 'https://gist.example/def', source: 'github' },
    });
    expect(JSON.stringify(await api.database.db.selectFrom('signals').selectAll().execute())).not.toContain(
      secret,
    );
  });

  it('raises nothing for an unknown key', async () => {
    const t = await createTenant(api, 'sig-exposed-none');
    await api.http
      .post('/v1/exposures')
      .set(bearer(t.admin))
      .send({ key: 'kw_live_notakey', url: 'https://x.example', source: 'scan' })
      .expect(200);
    const res = await api.http.get('/v1/signals').set(bearer(t.admin)).expect(200);
    expect(res.body.items).toEqual([]);
  });
});

describe('acknowledge and resolve', () => {
  let t: TenantFixture;
  let account: { accountId: string; keyId: string };
  beforeAll(async () => {
    t = await createTenant(api, 'sig-triage');
    account = await accountWithKey(t, 'triaged');
  });

  it('acknowledges an open signal once, resolves it once, then a new sighting opens a new one', async () => {
    const { signalId } = await raise(t.tenantId, 'EXPIRED_KEY_USED', account.accountId, account.keyId);
    const ack = await api.http
      .post(`/v1/signals/${signalId}/acknowledge`)
      .set(bearer(t.admin))
      .send({ note: 'on it, INC-1' })
      .expect(200);
    expect(ack.headers.etag).toBe('"2"');
    expect(ack.body).toMatchObject({
      id: signalId,
      status: 'acknowledged',
      acknowledgedNote: 'on it, INC-1',
    });
    expectProblem(
      await api.http.post(`/v1/signals/${signalId}/acknowledge`).set(bearer(t.admin)).send({}),
      409,
      'CONFLICT',
    );

    // Seen again while acknowledged: counted, still acknowledged.
    expect(await raise(t.tenantId, 'EXPIRED_KEY_USED', account.accountId, account.keyId)).toEqual({
      outcome: 'counted',
      signalId,
    });

    const resolved = await api.http
      .post(`/v1/signals/${signalId}/resolve`)
      .set(bearer(t.admin))
      .send({ note: 'client fixed' })
      .expect(200);
    expect(resolved.body).toMatchObject({
      status: 'resolved',
      count: 2,
      resolvedNote: 'client fixed',
      autoResolved: false,
      resolvedAt: expect.any(String),
    });
    expectProblem(
      await api.http.post(`/v1/signals/${signalId}/resolve`).set(bearer(t.admin)).send({}),
      409,
      'CONFLICT',
    );
    expectProblem(
      await api.http.post(`/v1/signals/${signalId}/acknowledge`).set(bearer(t.admin)).send({}),
      409,
      'CONFLICT',
    );

    const next = await raise(t.tenantId, 'EXPIRED_KEY_USED', account.accountId, account.keyId);
    expect(next.outcome).toBe('raised');
    expect(next.signalId).not.toBe(signalId);
    const open = await api.http
      .get(`/v1/signals?type=EXPIRED_KEY_USED&status=open`)
      .set(bearer(t.admin))
      .expect(200);
    expect(open.body.items.map((s: { id: string }) => s.id)).toEqual([next.signalId]);
    const closed = await api.http
      .get(`/v1/signals?type=EXPIRED_KEY_USED&status=resolved`)
      .set(bearer(t.admin))
      .expect(200);
    expect(closed.body.items.map((s: { id: string }) => s.id)).toEqual([signalId]);
  });

  it('resolves an open signal directly, without a body', async () => {
    const { signalId } = await raise(t.tenantId, 'ROTATION_OVERDUE', account.accountId, account.keyId);
    const res = await api.http.post(`/v1/signals/${signalId}/resolve`).set(bearer(t.admin)).expect(200);
    expect(res.body).toMatchObject({ status: 'resolved', resolvedNote: null });
  });

  it('refuses a bad note with 400 and changes nothing', async () => {
    const { signalId } = await raise(t.tenantId, 'ROTATION_FAILED', account.accountId, account.keyId);
    const before = await eventCount(api);
    for (const body of [{ note: 'x'.repeat(1001) }, { note: 42 }, { note: null }, { reason: 'no' }]) {
      expectProblem(
        await api.http.post(`/v1/signals/${signalId}/acknowledge`).set(bearer(t.admin)).send(body),
        400,
        'VALIDATION_FAILED',
      );
    }
    expect(await eventCount(api)).toBe(before);
  });

  it('answers 404 for an unknown or malformed signal id', async () => {
    for (const id of ['sig_00000000000000000000', 'nope', 'key_00000000000000000000']) {
      expectProblem(await api.http.get(`/v1/signals/${id}`).set(bearer(t.admin)), 404, 'NOT_FOUND');
      expectProblem(
        await api.http.post(`/v1/signals/${id}/resolve`).set(bearer(t.admin)).send({}),
        404,
        'NOT_FOUND',
      );
    }
  });
});

describe('listing', () => {
  let t: TenantFixture;
  let account: { accountId: string; keyId: string };
  const types: SignalType[] = ['VOLUME_SPIKE', 'DENIAL_BURST', 'SCOPE_CREEP', 'NEW_SOURCE', 'MANY_SOURCES'];
  const ids: string[] = [];
  beforeAll(async () => {
    t = await createTenant(api, 'sig-list');
    account = await accountWithKey(t, 'listed');
    for (const type of types) {
      api.clock.advance(1_000);
      ids.push((await raise(t.tenantId, type, account.accountId, account.keyId)).signalId!);
    }
  });

  it('pages newest first without repeats or gaps', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Response = await api.http
        .get('/v1/signals')
        .query(cursor ? { limit: 2, cursor } : { limit: 2 })
        .set(bearer(t.admin))
        .expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((s: { id: string }) => s.id));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  it('filters by status, severity, type and account together', async () => {
    const other = await accountWithKey(t, 'listed-other');
    await raise(t.tenantId, 'VOLUME_SPIKE', other.accountId, other.keyId);
    const byType = await api.http.get('/v1/signals?type=VOLUME_SPIKE').set(bearer(t.admin)).expect(200);
    expect(byType.body.items).toHaveLength(2);
    const narrowed = await api.http
      .get(`/v1/signals?type=VOLUME_SPIKE&serviceAccountId=${account.accountId}&status=open&severity=high`)
      .set(bearer(t.admin))
      .expect(200);
    expect(narrowed.body.items.map((s: { id: string }) => s.id)).toEqual([ids[0]]);
    const none = await api.http.get('/v1/signals?severity=low').set(bearer(t.admin)).expect(200);
    expect(none.body).toEqual({ items: [], nextCursor: null });
  });

  it('answers problem JSON 400 for bad filters and paging', async () => {
    for (const query of [
      'status=closed',
      'severity=critical',
      'type=KEY_LEAKED',
      'serviceAccountId=%00bad',
      'limit=0',
      'limit=201',
      'limit=ten',
      'cursor=not-a-cursor',
      'colour=red',
    ]) {
      const res = await api.http.get(`/v1/signals?${query}`).set(bearer(t.admin));
      expectProblem(res, 400, 'VALIDATION_FAILED');
    }
  });
});

describe('access', () => {
  let a: TenantFixture;
  let signalId: string;
  beforeAll(async () => {
    a = await createTenant(api, 'sig-access-a');
    const { accountId, keyId } = await accountWithKey(a, 'guarded');
    signalId = (await raise(a.tenantId, 'MANY_SOURCES', accountId, keyId)).signalId!;
  });

  it('answers 401 without a credential or with an unknown one', async () => {
    expectProblem(await api.http.get('/v1/signals'), 401, 'UNAUTHENTICATED');
    expectProblem(await api.http.get('/v1/signals').set(bearer('kwo_nope')), 401, 'UNAUTHENTICATED');
    expectProblem(await api.http.post(`/v1/signals/${signalId}/resolve`).send({}), 401, 'UNAUTHENTICATED');
  });

  it('lets an auditor read but not acknowledge or resolve; a verifier cannot read', async () => {
    const auditor = await a.token('auditor');
    await api.http.get('/v1/signals').set(bearer(auditor)).expect(200);
    await api.http.get(`/v1/signals/${signalId}`).set(bearer(auditor)).expect(200);
    expectProblem(
      await api.http.post(`/v1/signals/${signalId}/acknowledge`).set(bearer(auditor)).send({}),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await api.http.post(`/v1/signals/${signalId}/resolve`).set(bearer(auditor)).send({}),
      403,
      'FORBIDDEN',
    );
    const verifier = await a.token('verifier');
    expectProblem(await api.http.get('/v1/signals').set(bearer(verifier)), 403, 'FORBIDDEN');
  });

  it("hides one tenant's signals from another: not listed, 404 by id", async () => {
    const b = await createTenant(api, 'sig-access-b');
    const list = await api.http.get('/v1/signals').set(bearer(b.admin)).expect(200);
    expect(list.body.items).toEqual([]);
    expectProblem(await api.http.get(`/v1/signals/${signalId}`).set(bearer(b.admin)), 404, 'NOT_FOUND');
    for (const action of ['acknowledge', 'resolve']) {
      expectProblem(
        await api.http.post(`/v1/signals/${signalId}/${action}`).set(bearer(b.admin)).send({}),
        404,
        'NOT_FOUND',
      );
    }
    const still = await api.http.get(`/v1/signals/${signalId}`).set(bearer(a.admin)).expect(200);
    expect(still.body.status).toBe('open');
  });
});
