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

/** API.md "Keys": POST /v1/exposures, in Keyward's and GitHub's body shapes. */
let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

async function accountWithKey(
  t: TenantFixture,
  name: string,
): Promise<{ accountId: string; keyId: string; secret: string }> {
  const account = await api.http
    .post('/v1/service-accounts')
    .set(bearer(t.admin))
    .send({
      name,
      environment: 'staging',
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['tickets:read'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(bearer(t.admin))
    .send({ name: 'worker', scopes: ['tickets:read'] })
    .expect(201);
  return { accountId: account.body.id, keyId: key.body.id, secret: key.body.secret };
}

it('revokes an exposed key, names it and its account, and never stores the raw key', async () => {
  const t = await createTenant(api, 'exp-revoke');
  const { accountId, keyId, secret } = await accountWithKey(t, 'leaky');
  const res = await api.http
    .post('/v1/exposures')
    .set(bearer(t.admin))
    .send({ key: secret, url: 'https://gist.example/abc', source: 'pastebin-scan' })
    .expect(200);
  expect(res.body).toEqual({
    matched: true,
    keyId,
    prefix: expect.stringMatching(/^kw_stage_/),
    serviceAccount: { id: accountId, name: 'leaky' },
    action: 'revoked',
  });
  const key = await api.http.get(`/v1/keys/${keyId}`).set(bearer(t.admin)).expect(200);
  expect(key.body.status).toBe('revoked');

  const events = await api.database.db
    .selectFrom('events')
    .select(['type', 'data', 'transaction_id'])
    .where('stream_id', '=', keyId)
    .orderBy('stream_version')
    .execute();
  expect(events.map((e) => e.type)).toEqual(['KeyIssued', 'KeyExposed', 'KeyRevoked']);
  expect(events[1].data).toEqual({ url: 'https://gist.example/abc', source: 'pastebin-scan' });
  expect(events[2].data).toEqual({ cause: 'exposed', emergency: true });
  expect(events[1].transaction_id).toBe(events[2].transaction_id);

  const everything =
    JSON.stringify(await api.database.db.selectFrom('events').selectAll().execute()) + api.logs();
  expect(everything).not.toContain(secret);
});

it("accepts GitHub's secret-scanning array and answers each finding in order", async () => {
  const t = await createTenant(api, 'exp-github');
  const a = await accountWithKey(t, 'gh-one');
  const res = await api.http
    .post('/v1/exposures')
    .set(bearer(t.admin))
    .send([
      { token: a.secret, type: 'keyward_key', url: 'https://github.com/o/r/blob/x', source: 'content' },
      {
        token: 'kw_stage_notarealkeyatall',
        type: 'keyward_key',
        url: 'https://github.com/o/r',
        source: 'commit',
      },
    ])
    .expect(200);
  expect(res.body).toEqual([
    expect.objectContaining({ matched: true, keyId: a.keyId, action: 'revoked' }),
    { matched: false },
  ]);
});

it('answers matched: false for an unknown key and for another tenant key, changing nothing', async () => {
  const mine = await createTenant(api, 'exp-mine');
  const other = await createTenant(api, 'exp-other');
  const theirs = await accountWithKey(other, 'theirs');
  const before = await eventCount(api);
  const unknown = await api.http
    .post('/v1/exposures')
    .set(bearer(mine.admin))
    .send({ key: 'nope' })
    .expect(200);
  expect(unknown.body).toEqual({ matched: false });
  const foreign = await api.http
    .post('/v1/exposures')
    .set(bearer(mine.admin))
    .send({ key: theirs.secret })
    .expect(200);
  expect(foreign.body).toEqual({ matched: false });
  expect(await eventCount(api)).toBe(before);
  const still = await api.http.get(`/v1/keys/${theirs.keyId}`).set(bearer(other.admin)).expect(200);
  expect(still.body.status).toBe('active');
});

it('only flags the key where the tenant policy says so', async () => {
  const t = await createTenant(api, 'exp-flag');
  await api.http.patch('/v1/policy').set(bearer(t.admin)).send({ exposureAction: 'flag' }).expect(200);
  const { keyId, secret } = await accountWithKey(t, 'flagged');
  const res = await api.http.post('/v1/exposures').set(bearer(t.admin)).send({ key: secret }).expect(200);
  expect(res.body.action).toBe('flagged');
  const key = await api.http.get(`/v1/keys/${keyId}`).set(bearer(t.admin)).expect(200);
  expect(key.body.status).toBe('active');
});

it('records a finding on a key revoked already without revoking it twice', async () => {
  const t = await createTenant(api, 'exp-twice');
  const { secret } = await accountWithKey(t, 'twice');
  await api.http.post('/v1/exposures').set(bearer(t.admin)).send({ key: secret }).expect(200);
  const again = await api.http.post('/v1/exposures').set(bearer(t.admin)).send({ key: secret }).expect(200);
  expect(again.body.action).toBe('already-revoked');
});

it.each([
  ['neither key nor token', { url: 'https://x' }, 'key'],
  ['both key and token', { key: 'a', token: 'b' }, 'key'],
  ['an unknown field', { key: 'a', colour: 'red' }, 'colour'],
  ['a key that is not a string', { key: 42 }, 'key'],
  ['an empty array', [], '(body)'],
  ['a bad item in an array', [{ key: 'a' }, 'text'], '[1]'],
  ['more than 100 findings', Array.from({ length: 101 }, () => ({ key: 'a' })), '(body)'],
])('refuses %s with 400, writing nothing', async (_what, body, field) => {
  const t = await createTenant(api, `exp-bad-${Math.random().toString(36).slice(2, 8)}`);
  const before = await eventCount(api);
  const res = await api.http
    .post('/v1/exposures')
    .set(bearer(t.admin))
    .send(body as object)
    .expect(400);
  expectProblem(res, 400, 'VALIDATION_FAILED');
  expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
  expect(await eventCount(api)).toBe(before);
});

it('is for roles that may change keys', async () => {
  const t = await createTenant(api, 'exp-roles');
  await api.http
    .post('/v1/exposures')
    .set(bearer(await t.token('auditor')))
    .send({ key: 'x' })
    .expect(403);
  await api.http.post('/v1/exposures').send({ key: 'x' }).expect(401);
});
