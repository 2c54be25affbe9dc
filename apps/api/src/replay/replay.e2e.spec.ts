import {
  bearer,
  createTenant,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * API.md "History and replay": GET /v1/service-accounts/{id}/state?asOf= and
 * GET /v1/access?scope=&asOf=, through the real HTTP app. One account is walked through its whole
 * life on the test clock (creation, grants, keys, rotation with grace, narrowing, disable, enable,
 * revocation, deletion), each step's time recorded; the replay is then asked about a time inside
 * every interval and exactly at the boundaries.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const GRACE_SECONDS = 2 * 3600;

let api: TestApi;

type Headers = Record<string, string>;

interface Walk {
  admin: Headers;
  auditor: Headers;
  approver: Headers;
  verifier: Headers;
  /** The walked account and its keys: k1 is rotated into k2; k3 expires without an event; k4 is revoked. */
  account: string;
  k1: string;
  k2: string;
  k3: string;
  k4: string;
  /** Another account of the same tenant, with another scope, and its key. */
  billing: string;
  billingKey: string;
  /** Another tenant, with its own account holding tickets:read. */
  other: { auth: Headers; account: string; key: string };
  /** When each step happened. */
  t: {
    created: Date;
    granted: Date;
    k1Issued: Date;
    k3Issued: Date;
    rotated: Date;
    graceEnds: Date;
    narrowed: Date;
    disabled: Date;
    enabled: Date;
    k4Issued: Date;
    k3Expires: Date;
    k4Revoked: Date;
    deleted: Date;
  };
  adminActor: { type: string; id: string; name: string };
}

let w: Walk;

const at = (time: Date, ms = 0) => new Date(time.getTime() + ms);

async function createAccount(auth: Headers, body: Record<string, unknown>): Promise<string> {
  const res = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({ environment: 'staging', businessOwner: 'support-ops', technicalOwner: 'ai-platform', ...body });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function issue(auth: Headers, accountId: string, body: Record<string, unknown>): Promise<string> {
  const res = await api.http.post(`/v1/service-accounts/${accountId}/keys`).set(auth).send(body);
  expect(res.status).toBe(201);
  return res.body.id as string;
}

/** Moves the test clock and answers the new now: the time the next step happens at. */
function advance(ms: number): Date {
  api.clock.advance(ms);
  return api.clock.now();
}

beforeAll(async () => {
  api = await startTestApi();
  const tenant = await createTenant(api, 'replay');
  const admin = bearer(tenant.admin);
  const adminActor = (await api.database.db
    .selectFrom('operators')
    .select(['id', 'name'])
    .where('tenant_id', '=', 'replay')
    .where('role', '=', 'admin')
    .executeTakeFirstOrThrow()) as { id: string; name: string };

  const otherTenant = await createTenant(api, 'replay-other');
  const otherAuth = bearer(otherTenant.admin);
  const otherAccount = await createAccount(otherAuth, {
    name: 'other-reader',
    allowedScopes: ['tickets:read'],
  });
  const otherKey = await issue(otherAuth, otherAccount, { name: 'other-key', scopes: ['tickets:read'] });

  const billing = await createAccount(admin, { name: 'billing-export', allowedScopes: ['billing:read'] });

  // The walk. Account changes are made with reasons, so the granting events can be told apart.
  const created = api.clock.now();
  const account = await createAccount(admin, {
    name: 'walk-digest',
    allowedScopes: ['tickets:read'],
    boundaries: ['site:plant-7'],
    reason: 'ticket OPS-1',
  });

  const granted = advance(HOUR);
  await api.http
    .post(`/v1/service-accounts/${account}/scopes`)
    .set(admin)
    .send({ scopes: ['tickets:*', 'summaries:draft'], reason: 'ticket OPS-2' })
    .expect(200);

  const k1Issued = advance(HOUR);
  const k1 = await issue(admin, account, {
    name: 'digest-worker',
    scopes: ['tickets:*', 'summaries:draft'],
    expiresInDays: 30,
    reason: 'first key',
  });
  const billingKey = await issue(admin, billing, { name: 'billing-key', scopes: ['billing:read'] });

  const k3Issued = advance(HOUR);
  const k3 = await issue(admin, account, { name: 'short-lived', scopes: ['tickets:read'], expiresInDays: 1 });

  const rotated = advance(HOUR);
  const rotation = await api.http
    .post(`/v1/keys/${k1}/rotate`)
    .set(admin)
    .send({ gracePeriodSeconds: GRACE_SECONDS, reason: 'scheduled rotation' })
    .expect(201);
  const k2 = rotation.body.id as string;

  const narrowed = advance(3 * HOUR);
  await api.http
    .delete(`/v1/service-accounts/${account}/scopes/${encodeURIComponent('tickets:*')}`)
    .set(admin)
    .send({})
    .expect(200);

  const disabled = advance(HOUR);
  await api.http.post(`/v1/service-accounts/${account}/disable`).set(admin).send({}).expect(200);

  const enabled = advance(HOUR);
  await api.http.post(`/v1/service-accounts/${account}/enable`).set(admin).send({}).expect(200);

  const k4Issued = advance(HOUR);
  const k4 = await issue(admin, account, { name: 'late-key', scopes: ['tickets:read'], expiresInDays: 30 });

  const k4Revoked = advance(DAY);
  await api.http.post(`/v1/keys/${k4}/revoke`).set(admin).send({ reason: 'not needed' }).expect(200);

  const deleted = advance(HOUR);
  await api.http.delete(`/v1/service-accounts/${account}`).set(admin).send({ reason: 'retired' }).expect(200);

  advance(HOUR);

  w = {
    admin,
    auditor: bearer(await tenant.token('auditor')),
    approver: bearer(await tenant.token('approver')),
    verifier: bearer(await tenant.token('verifier')),
    account,
    k1,
    k2,
    k3,
    k4,
    billing,
    billingKey,
    other: { auth: otherAuth, account: otherAccount, key: otherKey },
    t: {
      created,
      granted,
      k1Issued,
      k3Issued,
      rotated,
      graceEnds: at(rotated, GRACE_SECONDS * 1000),
      narrowed,
      disabled,
      enabled,
      k4Issued,
      k3Expires: at(k3Issued, DAY),
      k4Revoked,
      deleted,
    },
    adminActor: { type: 'operator', id: adminActor.id, name: adminActor.name },
  };
});

afterAll(async () => {
  await api?.close();
});

afterEach(() => expect(newServerErrors(api)).toEqual([]));

interface KeyState {
  id: string;
  serviceAccountId: string;
  name: string;
  prefix: string;
  scopes: string[];
  status: string;
  replaces: string | null;
  replacedBy: string | null;
  graceEndsAt: string | null;
  revokedAt: string | null;
  expiresAt: string;
  version: number;
}

interface AccountState {
  id: string;
  status: string;
  allowedScopes: string[];
  version: number;
  activeKeyCount: number;
  keys: KeyState[];
  asOf: string;
  [field: string]: unknown;
}

interface GrantingEvent {
  position: number;
  streamId: string;
  version: number;
  type: string;
  occurredAt: string;
  actor: { type: string; id: string; name: string };
  reason: string | null;
  correlationId: string;
  scopes: string[];
}

interface AccessItem {
  account: { id: string; name: string; environment: string };
  key: {
    id: string;
    prefix: string;
    name: string;
    status: string;
    expiresAt: string;
    graceEndsAt: string | null;
  };
  matchingScopes: string[];
  grantedBy: { ceiling: GrantingEvent[]; key: GrantingEvent[] };
}

interface AccessAnswer {
  scope: string;
  asOf: string;
  items: AccessItem[];
}

function stateRequest(accountId: string, asOf?: Date | string, auth: Headers = w.auditor) {
  const query = asOf === undefined ? {} : { asOf: asOf instanceof Date ? asOf.toISOString() : asOf };
  return api.http.get(`/v1/service-accounts/${accountId}/state`).query(query).set(auth);
}

async function stateAt(asOf: Date): Promise<AccountState> {
  const res = await stateRequest(w.account, asOf);
  expect(res.status).toBe(200);
  return res.body as AccountState;
}

function accessRequest(query: Record<string, string>, auth: Headers = w.auditor) {
  return api.http.get('/v1/access').query(query).set(auth);
}

async function accessAt(scope: string, asOf: Date, auth: Headers = w.auditor): Promise<AccessAnswer> {
  const res = await accessRequest({ scope, asOf: asOf.toISOString() }, auth);
  expect(res.status).toBe(200);
  return res.body as AccessAnswer;
}

/** `keyId: status [scopes]` for every key, in the answer's order: one line per key reads as the walk does. */
function keysOf(state: AccountState): string[] {
  const names = new Map([
    [w.k1, 'k1'],
    [w.k2, 'k2'],
    [w.k3, 'k3'],
    [w.k4, 'k4'],
  ]);
  return state.keys.map((k) => `${names.get(k.id) ?? k.id}: ${k.status} [${k.scopes.join(' ')}]`);
}

function keyIdsOf(answer: AccessAnswer): string[] {
  const names = new Map([
    [w.k1, 'k1'],
    [w.k2, 'k2'],
    [w.k3, 'k3'],
    [w.k4, 'k4'],
    [w.billingKey, 'billing'],
    [w.other.key, 'other'],
  ]);
  return answer.items.map((item) => `${names.get(item.key.id) ?? item.key.id}: ${item.key.status}`);
}

describe('GET /v1/service-accounts/{id}/state?asOf=', () => {
  const WALK_SCOPES = ['summaries:draft', 'tickets:*', 'tickets:read'];
  const K1_SCOPES = 'summaries:draft tickets:*';

  /**
   * Every interval of the walk, by a time inside it and its boundaries. `when` is read once the
   * walk has run; the rest is what the account and its keys must have looked like then.
   */
  const cases: {
    name: string;
    when: () => Date;
    status: string;
    allowedScopes: string[];
    version: number;
    keys: string[];
    activeKeyCount: number;
  }[] = [
    {
      name: 'at creation, exactly',
      when: () => w.t.created,
      status: 'active',
      allowedScopes: ['tickets:read'],
      version: 1,
      keys: [],
      activeKeyCount: 0,
    },
    {
      name: 'between creation and the grant',
      when: () => at(w.t.created, 30 * MINUTE),
      status: 'active',
      allowedScopes: ['tickets:read'],
      version: 1,
      keys: [],
      activeKeyCount: 0,
    },
    {
      name: 'a millisecond before the grant',
      when: () => at(w.t.granted, -1),
      status: 'active',
      allowedScopes: ['tickets:read'],
      version: 1,
      keys: [],
      activeKeyCount: 0,
    },
    {
      name: 'at the grant, exactly',
      when: () => w.t.granted,
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [],
      activeKeyCount: 0,
    },
    {
      name: 'between the grant and the first key',
      when: () => at(w.t.granted, 30 * MINUTE),
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [],
      activeKeyCount: 0,
    },
    {
      name: 'at the first key, exactly (the account stream does not move: issuing is a condition on it)',
      when: () => w.t.k1Issued,
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [`k1: active [${K1_SCOPES}]`],
      activeKeyCount: 1,
    },
    {
      name: 'between the first and the second key',
      when: () => at(w.t.k1Issued, 30 * MINUTE),
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [`k1: active [${K1_SCOPES}]`],
      activeKeyCount: 1,
    },
    {
      name: 'between the second key and the rotation',
      when: () => at(w.t.k3Issued, 30 * MINUTE),
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [`k1: active [${K1_SCOPES}]`, 'k3: active [tickets:read]'],
      activeKeyCount: 2,
    },
    {
      name: 'at the rotation, exactly: the old key is in its grace',
      when: () => w.t.rotated,
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [`k1: rotating [${K1_SCOPES}]`, 'k3: active [tickets:read]', `k2: active [${K1_SCOPES}]`],
      activeKeyCount: 3,
    },
    {
      name: 'a millisecond before the grace ends',
      when: () => at(w.t.graceEnds, -1),
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [`k1: rotating [${K1_SCOPES}]`, 'k3: active [tickets:read]', `k2: active [${K1_SCOPES}]`],
      activeKeyCount: 3,
    },
    {
      name: 'at the end of the grace, exactly: the old key is expired, no event needed',
      when: () => w.t.graceEnds,
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [`k1: expired [${K1_SCOPES}]`, 'k3: active [tickets:read]', `k2: active [${K1_SCOPES}]`],
      activeKeyCount: 2,
    },
    {
      name: 'between the end of the grace and the narrowing',
      when: () => at(w.t.narrowed, -30 * MINUTE),
      status: 'active',
      allowedScopes: WALK_SCOPES,
      version: 2,
      keys: [`k1: expired [${K1_SCOPES}]`, 'k3: active [tickets:read]', `k2: active [${K1_SCOPES}]`],
      activeKeyCount: 2,
    },
    {
      name: 'at the narrowing, exactly: tickets:* left the ceiling and every unrevoked key',
      when: () => w.t.narrowed,
      status: 'active',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      version: 3,
      keys: ['k1: expired [summaries:draft]', 'k3: active [tickets:read]', 'k2: active [summaries:draft]'],
      activeKeyCount: 2,
    },
    {
      name: 'while disabled',
      when: () => at(w.t.disabled, 30 * MINUTE),
      status: 'disabled',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      version: 4,
      keys: ['k1: expired [summaries:draft]', 'k3: active [tickets:read]', 'k2: active [summaries:draft]'],
      activeKeyCount: 2,
    },
    {
      name: 'at the enable, exactly',
      when: () => w.t.enabled,
      status: 'active',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      version: 5,
      keys: ['k1: expired [summaries:draft]', 'k3: active [tickets:read]', 'k2: active [summaries:draft]'],
      activeKeyCount: 2,
    },
    {
      name: 'after the fourth key, before the short-lived key expires',
      when: () => at(w.t.k3Expires, -1),
      status: 'active',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      version: 5,
      keys: [
        'k1: expired [summaries:draft]',
        'k3: active [tickets:read]',
        'k2: active [summaries:draft]',
        'k4: active [tickets:read]',
      ],
      activeKeyCount: 3,
    },
    {
      name: 'at the short-lived key’s expiry, exactly: expired though no KeyExpired was written',
      when: () => w.t.k3Expires,
      status: 'active',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      version: 5,
      keys: [
        'k1: expired [summaries:draft]',
        'k3: expired [tickets:read]',
        'k2: active [summaries:draft]',
        'k4: active [tickets:read]',
      ],
      activeKeyCount: 2,
    },
    {
      name: 'after the revocation',
      when: () => at(w.t.k4Revoked, 30 * MINUTE),
      status: 'active',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      version: 5,
      keys: [
        'k1: expired [summaries:draft]',
        'k3: expired [tickets:read]',
        'k2: active [summaries:draft]',
        'k4: revoked [tickets:read]',
      ],
      activeKeyCount: 1,
    },
    {
      name: 'at the deletion, exactly: its last live key revoked in the same commit',
      when: () => w.t.deleted,
      status: 'deleted',
      allowedScopes: ['summaries:draft', 'tickets:read'],
      version: 6,
      keys: [
        'k1: expired [summaries:draft]',
        'k3: expired [tickets:read]',
        'k2: revoked [summaries:draft]',
        'k4: revoked [tickets:read]',
      ],
      activeKeyCount: 0,
    },
  ];

  it.each(cases)('$name', async (c) => {
    const state = await stateAt(c.when());
    expect(state.id).toBe(w.account);
    expect(state.asOf).toBe(c.when().toISOString());
    expect(state.status).toBe(c.status);
    expect(state.allowedScopes).toEqual(c.allowedScopes);
    expect(state.version).toBe(c.version);
    expect(keysOf(state)).toEqual(c.keys);
    expect(state.activeKeyCount).toBe(c.activeKeyCount);
  });

  it('answers 404 a millisecond before the account was created, and long before', async () => {
    expectProblem(await stateRequest(w.account, at(w.t.created, -1)), 404, 'NOT_FOUND');
    expectProblem(await stateRequest(w.account, '1970-01-01T00:00:00.000Z'), 404, 'NOT_FOUND');
    expectProblem(await stateRequest(w.account, '0001-01-01T00:00:00Z'), 404, 'NOT_FOUND');
    expectProblem(await stateRequest(w.account, '0000-01-01'), 404, 'NOT_FOUND');
  });

  it('shows the rotation links, grace end, revocation time and key fields as they were', async () => {
    const during = await stateAt(at(w.t.rotated, MINUTE));
    const [k1, , k2] = during.keys;
    expect(k1).toEqual(
      expect.objectContaining({
        id: w.k1,
        serviceAccountId: w.account,
        name: 'digest-worker',
        status: 'rotating',
        replacedBy: w.k2,
        graceEndsAt: w.t.graceEnds.toISOString(),
        revokedAt: null,
        version: 2,
      }),
    );
    expect(k2).toEqual(
      expect.objectContaining({ id: w.k2, replaces: w.k1, replacedBy: null, status: 'active', version: 1 }),
    );
    const before = await stateAt(at(w.t.rotated, -1));
    expect(before.keys[0]).toEqual(
      expect.objectContaining({ id: w.k1, replacedBy: null, graceEndsAt: null, version: 1 }),
    );

    const end = await stateAt(w.t.deleted);
    const k4 = end.keys.find((k) => k.id === w.k4)!;
    expect(k4.revokedAt).toBe(w.t.k4Revoked.toISOString());
    expect(end.keys.find((k) => k.id === w.k2)!.revokedAt).toBe(w.t.deleted.toISOString());
  });

  it('never shows a secret or its hash', async () => {
    const res = await stateRequest(w.account, w.t.rotated).expect(200);
    const text = JSON.stringify(res.body);
    for (const key of (res.body as AccountState).keys) {
      expect(Object.keys(key).filter((field) => /secret|hash/i.test(field))).toEqual([]);
    }
    const hashes = await api.database.db.selectFrom('keys').select('secret_hash').execute();
    for (const { secret_hash } of hashes) expect(text).not.toContain(secret_hash);
  });

  it('shows the short-lived key expired with no KeyExpired event stored', async () => {
    const expired = await api.database.db
      .selectFrom('events')
      .select('type')
      .where('stream_id', '=', w.k3)
      .where('type', '=', 'KeyExpired')
      .execute();
    expect(expired).toEqual([]);
  });

  it('without asOf answers now, the same as the live views but for usage', async () => {
    const now = api.clock.now().toISOString();
    const res = await stateRequest(w.account).expect(200);
    const state = res.body as AccountState;
    expect(state.asOf).toBe(now);

    const live = await api.http.get(`/v1/service-accounts/${w.account}`).set(w.auditor).expect(200);
    const { firstSeenAt: _first, lastSeenAt: _last, ...liveAccount } = live.body as Record<string, unknown>;
    const { keys, asOf: _asOf, ...replayed } = state;
    expect(replayed).toEqual(liveAccount);

    for (const key of keys) {
      const liveKey = await api.http.get(`/v1/keys/${key.id}`).set(w.auditor).expect(200);
      const { lastUsedAt: _used, ...liveFields } = liveKey.body as Record<string, unknown>;
      expect(key).toEqual(liveFields);
    }
  });

  it('answers a time after now as now, and says so in asOf', async () => {
    const now = api.clock.now().toISOString();
    const res = await stateRequest(w.account, at(api.clock.now(), 365 * DAY)).expect(200);
    expect(res.body.asOf).toBe(now);
    expect(keysOf(res.body)).toEqual(keysOf(await stateAt(api.clock.now())));
  });

  it('reads a date, and a time with an offset, as the instant they name', async () => {
    const midnight = await stateAt(new Date('2026-03-02T00:00:00.000Z'));
    const byDate = (await stateRequest(w.account, '2026-03-02').expect(200)).body as AccountState;
    expect(byDate.asOf).toBe('2026-03-02T00:00:00.000Z');
    expect(keysOf(byDate)).toEqual(keysOf(midnight));

    const offset = new Date(w.t.k1Issued.getTime() + HOUR).toISOString().replace('Z', '+01:00');
    const byOffset = (await stateRequest(w.account, offset).expect(200)).body as AccountState;
    expect(byOffset.asOf).toBe(w.t.k1Issued.toISOString());
    expect(keysOf(byOffset)).toEqual([`k1: active [${K1_SCOPES}]`]);
  });

  it("answers 404 for another tenant's account, a key id, and a malformed id", async () => {
    expectProblem(await stateRequest(w.other.account), 404, 'NOT_FOUND');
    expectProblem(await stateRequest(w.account, undefined, w.other.auth), 404, 'NOT_FOUND');
    expectProblem(await stateRequest(w.k2), 404, 'NOT_FOUND');
    expectProblem(await stateRequest('nope'), 404, 'NOT_FOUND');
    expectProblem(await stateRequest('sa_00000000000000000000'), 404, 'NOT_FOUND');
    // The other tenant sees its own account.
    const own = await stateRequest(w.other.account, undefined, w.other.auth).expect(200);
    expect(own.body.keys.map((k: KeyState) => k.id)).toEqual([w.other.key]);
  });

  it.each([
    ['a word', 'yesterday'],
    ['an empty value', ''],
    ['an impossible date', '2026-02-30T00:00:00Z'],
    ['a time without its zone', '2026-03-01T09:00:00'],
    ['a week date', '2026-W09-1'],
    ['epoch milliseconds', String(Date.UTC(2026, 2, 1))],
  ])('answers 400 for asOf as %s', async (_name, asOf) => {
    const res = await stateRequest(w.account, asOf);
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'asOf' })]);
  });

  it('answers 400 for asOf given twice and for an unknown query field', async () => {
    const twice = await api.http
      .get(`/v1/service-accounts/${w.account}/state?asOf=2026-03-01T10:00:00Z&asOf=2026-03-01T11:00:00Z`)
      .set(w.auditor);
    expectProblem(twice, 400, 'VALIDATION_FAILED');
    const unknown = await api.http
      .get(`/v1/service-accounts/${w.account}/state`)
      .query({ at: '2026-03-01T10:00:00Z' })
      .set(w.auditor);
    expectProblem(unknown, 400, 'VALIDATION_FAILED');
    expect(unknown.body.errors).toEqual([expect.objectContaining({ field: 'at' })]);
  });

  it('needs a credential (401) with the audit permission (verifier and approver 403; admin and auditor 200)', async () => {
    expectProblem(await api.http.get(`/v1/service-accounts/${w.account}/state`), 401, 'UNAUTHENTICATED');
    expectProblem(
      await stateRequest(w.account, undefined, { Authorization: 'Bearer kwop_unknown' }),
      401,
      'UNAUTHENTICATED',
    );
    expectProblem(await stateRequest(w.account, undefined, w.verifier), 403, 'FORBIDDEN');
    expectProblem(await stateRequest(w.account, undefined, w.approver), 403, 'FORBIDDEN');
    await stateRequest(w.account, undefined, w.auditor).expect(200);
    await stateRequest(w.account, undefined, w.admin).expect(200);
  });
});

describe('GET /v1/access?scope=&asOf=', () => {
  /** Who could use tickets:read at a time inside every interval of the walk, and at its boundaries. */
  const ticketsRead: { name: string; when: () => Date; keys: string[] }[] = [
    { name: 'before the account existed', when: () => at(w.t.created, -1), keys: [] },
    { name: 'before any key', when: () => at(w.t.granted, 30 * MINUTE), keys: [] },
    { name: 'at the first key, exactly, by its wildcard', when: () => w.t.k1Issued, keys: ['k1: active'] },
    {
      name: 'with two keys',
      when: () => at(w.t.k3Issued, 30 * MINUTE),
      keys: ['k1: active', 'k3: active'],
    },
    {
      name: 'during the grace: the old key, the new one and the other',
      when: () => at(w.t.graceEnds, -1),
      keys: ['k1: rotating', 'k3: active', 'k2: active'],
    },
    {
      name: 'at the end of the grace, exactly: the old key is out',
      when: () => w.t.graceEnds,
      keys: ['k3: active', 'k2: active'],
    },
    {
      name: 'at the narrowing, exactly: the new key lost tickets:*',
      when: () => w.t.narrowed,
      keys: ['k3: active'],
    },
    { name: 'at the disable, exactly: nothing', when: () => w.t.disabled, keys: [] },
    { name: 'while disabled', when: () => at(w.t.enabled, -1), keys: [] },
    { name: 'at the enable, exactly', when: () => w.t.enabled, keys: ['k3: active'] },
    {
      name: 'after the fourth key',
      when: () => at(w.t.k4Issued, 30 * MINUTE),
      keys: ['k3: active', 'k4: active'],
    },
    {
      name: 'at the short-lived key’s expiry, exactly (no KeyExpired event)',
      when: () => w.t.k3Expires,
      keys: ['k4: active'],
    },
    { name: 'at the revocation, exactly', when: () => w.t.k4Revoked, keys: [] },
    { name: 'after the deletion', when: () => at(w.t.deleted, 30 * MINUTE), keys: [] },
  ];

  it('pages by limit and cursor, every page answering for the first page’s time', async () => {
    const when = at(w.t.graceEnds, -1);
    const whole = await accessAt('tickets:read', when);
    expect(whole.items.length).toBeGreaterThanOrEqual(3);
    expect((whole as AccessAnswer & { nextCursor: unknown }).nextCursor).toBeNull();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: Record<string, string> = { scope: 'tickets:read', limit: '1' };
      // Only the first page names the time: the cursor carries it on.
      if (cursor) query.cursor = cursor;
      else query.asOf = when.toISOString();
      const res = await accessRequest(query).expect(200);
      expect(res.body.asOf).toBe(when.toISOString());
      expect(res.body.items).toHaveLength(1);
      seen.push(...keyIdsOf(res.body as AccessAnswer));
      cursor = res.body.nextCursor as string | null;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(keyIdsOf(whole));
    expect(pages).toBe(whole.items.length);
  });

  it('answers 400 for a limit out of range and a cursor this listing did not return', async () => {
    expectProblem(await accessRequest({ scope: 'tickets:read', limit: '0' }), 400, 'VALIDATION_FAILED');
    expectProblem(await accessRequest({ scope: 'tickets:read', limit: '201' }), 400, 'VALIDATION_FAILED');
    expectProblem(
      await accessRequest({ scope: 'tickets:read', cursor: 'nonsense' }),
      400,
      'VALIDATION_FAILED',
    );
    const first = await accessRequest({
      scope: 'tickets:read',
      asOf: at(w.t.graceEnds, -1).toISOString(),
      limit: '1',
    }).expect(200);
    // A cursor of tickets:read names a key that billing:read's listing does not hold.
    const foreign = await accessRequest({ scope: 'billing:read', cursor: first.body.nextCursor as string });
    expectProblem(foreign, 400, 'VALIDATION_FAILED');
  });

  it.each(ticketsRead)('tickets:read $name', async (c) => {
    const answer = await accessAt('tickets:read', c.when());
    expect(answer.scope).toBe('tickets:read');
    expect(answer.asOf).toBe(c.when().toISOString());
    expect(keyIdsOf(answer)).toEqual(c.keys);
    // Neither the other account of this tenant nor the other tenant's key ever appears.
    for (const item of answer.items) expect(item.account.id).toBe(w.account);
  });

  it('names the account, the key, the matching scopes and the events that granted it', async () => {
    const answer = await accessAt('tickets:read', at(w.t.k3Issued, MINUTE));
    const [k1, k3] = answer.items;
    expect(k1.account).toEqual({ id: w.account, name: 'walk-digest', environment: 'staging' });
    expect(k1.key).toEqual({
      id: w.k1,
      prefix: expect.stringMatching(/^kw_stage_/),
      name: 'digest-worker',
      status: 'active',
      expiresAt: at(w.t.k1Issued, 30 * DAY).toISOString(),
      graceEndsAt: null,
    });
    expect(k1.matchingScopes).toEqual(['tickets:*']);
    // The ceiling covers tickets:read twice: by its own name since creation, and by the wildcard granted later.
    expect(k1.grantedBy.ceiling).toEqual([
      {
        position: expect.any(Number),
        streamId: w.account,
        version: 1,
        type: 'ServiceAccountCreated',
        occurredAt: w.t.created.toISOString(),
        actor: w.adminActor,
        reason: 'ticket OPS-1',
        correlationId: expect.any(String),
        scopes: ['tickets:read'],
      },
      expect.objectContaining({
        streamId: w.account,
        version: 2,
        type: 'ScopesGranted',
        occurredAt: w.t.granted.toISOString(),
        actor: w.adminActor,
        reason: 'ticket OPS-2',
        scopes: ['tickets:*'],
      }),
    ]);
    expect(k1.grantedBy.ceiling[0].position).toBeLessThan(k1.grantedBy.ceiling[1].position);
    expect(k1.grantedBy.key).toEqual([
      expect.objectContaining({
        streamId: w.k1,
        version: 1,
        type: 'KeyIssued',
        occurredAt: w.t.k1Issued.toISOString(),
        reason: 'first key',
        scopes: ['tickets:*'],
      }),
    ]);
    expect(k3.matchingScopes).toEqual(['tickets:read']);
    expect(k3.grantedBy.key).toEqual([expect.objectContaining({ streamId: w.k3, type: 'KeyIssued' })]);
  });

  it('gives a key made by a rotation both the rotation and its own KeyIssued, and the old key its grace end', async () => {
    const answer = await accessAt('tickets:read', at(w.t.rotated, MINUTE));
    const k1 = answer.items.find((i) => i.key.id === w.k1)!;
    expect(k1.key).toEqual(
      expect.objectContaining({ status: 'rotating', graceEndsAt: w.t.graceEnds.toISOString() }),
    );
    const k2 = answer.items.find((i) => i.key.id === w.k2)!;
    expect(k2.grantedBy.key).toEqual([
      expect.objectContaining({
        streamId: w.k1,
        type: 'KeyRotated',
        occurredAt: w.t.rotated.toISOString(),
        reason: 'scheduled rotation',
        scopes: ['tickets:*'],
      }),
      expect.objectContaining({ streamId: w.k2, type: 'KeyIssued', occurredAt: w.t.rotated.toISOString() }),
    ]);
  });

  it('after the narrowing names only the grant that still stands', async () => {
    const answer = await accessAt('tickets:read', w.t.enabled);
    expect(answer.items).toHaveLength(1);
    expect(answer.items[0].grantedBy.ceiling.map((e) => [e.type, e.scopes])).toEqual([
      ['ServiceAccountCreated', ['tickets:read']],
    ]);
  });

  it('matches wildcards as verify does: tickets:write through tickets:*, tickets:* only by itself', async () => {
    const write = await accessAt('tickets:write', at(w.t.k3Issued, MINUTE));
    expect(keyIdsOf(write)).toEqual(['k1: active']);
    expect(write.items[0].matchingScopes).toEqual(['tickets:*']);
    // Only the wildcard covers tickets:write on the ceiling.
    expect(write.items[0].grantedBy.ceiling.map((e) => e.type)).toEqual(['ScopesGranted']);

    const wildcard = await accessAt('tickets:*', at(w.t.k3Issued, MINUTE));
    expect(keyIdsOf(wildcard)).toEqual(['k1: active']);

    expect(keyIdsOf(await accessAt('tickets:write', w.t.narrowed))).toEqual([]);
  });

  it('finds the other scopes and accounts, and only them', async () => {
    expect(keyIdsOf(await accessAt('summaries:draft', w.t.narrowed))).toEqual(['k2: active']);
    expect(keyIdsOf(await accessAt('summaries:draft', at(w.t.rotated, MINUTE)))).toEqual([
      'k1: rotating',
      'k2: active',
    ]);
    const billing = await accessAt('billing:read', at(w.t.k3Issued, MINUTE));
    expect(keyIdsOf(billing)).toEqual(['billing: active']);
    expect(billing.items[0].account).toEqual({
      id: w.billing,
      name: 'billing-export',
      environment: 'staging',
    });
    expect(keyIdsOf(await accessAt('billing:read', at(w.t.k1Issued, -1)))).toEqual([]);
    expect(keyIdsOf(await accessAt('unknown:read', at(w.t.k3Issued, MINUTE)))).toEqual([]);
  });

  it('keeps tenants apart', async () => {
    const other = await accessAt('tickets:read', api.clock.now(), w.other.auth);
    expect(keyIdsOf(other)).toEqual(['other: active']);
    const own = await accessAt('tickets:read', at(w.t.k3Issued, MINUTE));
    expect(own.items.map((i) => i.key.id)).not.toContain(w.other.key);
  });

  it('without asOf answers now; a time after now is answered as now', async () => {
    const now = api.clock.now().toISOString();
    const plain = (await accessRequest({ scope: 'billing:read' }).expect(200)).body as AccessAnswer;
    expect(plain.asOf).toBe(now);
    expect(keyIdsOf(plain)).toEqual(['billing: active']);
    const later = (
      await accessRequest({
        scope: 'billing:read',
        asOf: at(api.clock.now(), 400 * DAY).toISOString(),
      }).expect(200)
    ).body as AccessAnswer;
    // A year on the billing key (180 days) would have expired; the answer stays a fact about now.
    expect(later.asOf).toBe(now);
    expect(keyIdsOf(later)).toEqual(['billing: active']);
  });

  it.each([
    ['no scope', { asOf: '2026-03-01T10:00:00Z' }, 'scope'],
    ['an empty scope', { scope: '' }, 'scope'],
    ['a scope of the wrong form', { scope: 'Tickets:Read' }, 'scope'],
    ['a scope without an action', { scope: 'tickets' }, 'scope'],
    ['a malformed asOf', { scope: 'tickets:read', asOf: 'last tuesday' }, 'asOf'],
    ['an unknown query field', { scope: 'tickets:read', accountId: 'sa_00000000000000000000' }, 'accountId'],
  ])('answers 400 for %s', async (_name, query, field) => {
    const res = await accessRequest(query as Record<string, string>);
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
  });

  it('needs a credential (401) with the audit permission (verifier and approver 403; admin and auditor 200)', async () => {
    expectProblem(await api.http.get('/v1/access?scope=tickets:read'), 401, 'UNAUTHENTICATED');
    expectProblem(await accessRequest({ scope: 'tickets:read' }, w.verifier), 403, 'FORBIDDEN');
    expectProblem(await accessRequest({ scope: 'tickets:read' }, w.approver), 403, 'FORBIDDEN');
    await accessRequest({ scope: 'tickets:read' }, w.auditor).expect(200);
    await accessRequest({ scope: 'tickets:read' }, w.admin).expect(200);
  });
});

describe('the OpenAPI document', () => {
  it('describes both answers, with their query fields', async () => {
    const doc = (await api.http.get('/openapi.json').expect(200)).body;
    const state = doc.paths['/v1/service-accounts/{id}/state'].get;
    expect(state.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['asOf', 'id']);
    expect(state.responses['200'].content['application/json'].schema.$ref).toMatch(/AccountStateView$/);
    const access = doc.paths['/v1/access'].get;
    expect(access.parameters.map((p: { name: string; required: boolean }) => [p.name, p.required])).toEqual(
      expect.arrayContaining([
        ['scope', true],
        ['asOf', false],
      ]),
    );
    expect(access.responses['200'].content['application/json'].schema.$ref).toMatch(/AccessView$/);
    const { schemas } = doc.components;
    expect(Object.keys(schemas.AccessItemView.properties)).toEqual([
      'account',
      'key',
      'matchingScopes',
      'grantedBy',
    ]);
    expect(Object.keys(schemas.GrantingEventView.properties)).toEqual(
      expect.arrayContaining(['position', 'type', 'occurredAt', 'actor', 'reason', 'scopes']),
    );
    expect(Object.keys(schemas.AccountStateView.properties)).toEqual(
      expect.arrayContaining(['allowedScopes', 'status', 'keys', 'asOf', 'activeKeyCount']),
    );
  });
});
