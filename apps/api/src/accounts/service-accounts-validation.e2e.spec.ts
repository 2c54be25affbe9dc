import type { Response } from 'supertest';
import {
  bearer,
  createTenant,
  startTestApi,
  type TestApi,
  newServerErrors,
  eventCount,
  expectProblem,
} from '../../../../test/support/api';

/**
 * API.md "Errors": bad input to the service-account routes answers 400 VALIDATION_FAILED problem
 * JSON naming the field, and nothing is written.
 */

let api: TestApi;

beforeAll(async () => {
  // The secretDelivery URLs here (API.md's vault-adapter.internal) are internal hosts: the webhook
  // address policy refuses them unless private addresses are allowed. That policy is tested in
  // service-accounts-secret-delivery.e2e.spec.ts.
  api = await startTestApi({ KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' });
});
afterAll(async () => {
  await api?.close();
});

afterEach(() => expect(newServerErrors(api)).toEqual([]));

type Headers = Record<string, string>;

let tenantSeq = 0;
/** A tenant of the test's own, so no test depends on another's data. */
async function freshTenant(): Promise<Headers> {
  tenantSeq += 1;
  const { admin } = await createTenant(api, `val-${tenantSeq}`);
  return bearer(admin);
}

function validBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'valid-account',
    environment: 'staging',
    businessOwner: 'support-ops',
    technicalOwner: 'ai-platform',
    ...overrides,
  };
}

/** `validBody` without the named fields. */
function without(...fields: string[]): Record<string, unknown> {
  const body = validBody();
  for (const field of fields) delete body[field];
  return body;
}

async function createAccount(auth: Headers, overrides: Record<string, unknown> = {}) {
  const res = await api.http.post('/v1/service-accounts').set(auth).send(validBody(overrides));
  expect(res.status).toBe(201);
  return res.body as Record<string, unknown> & { id: string; version: number };
}

async function accountCount(): Promise<number> {
  const row = await api.database.db
    .selectFrom('service_accounts')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** 400 VALIDATION_FAILED with an entry for `field` in `errors`. */
function expectInvalid(res: Response, field: string): void {
  expectProblem(res, 400, 'VALIDATION_FAILED');
  expect(Array.isArray(res.body.errors)).toBe(true);
  for (const error of res.body.errors)
    expect(error).toEqual({ field: expect.any(String), message: expect.any(String) });
  expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
}

const scopes = (n: number) => Array.from({ length: n }, (_, i) => `product-${i}:read`);

describe('POST /v1/service-accounts refuses bad bodies with 400 and writes nothing', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an uppercase name', validBody({ name: 'Nightly-Digest' }), 'name'],
    ['a name of 2 characters', validBody({ name: 'ab' }), 'name'],
    ['a name of 65 characters', validBody({ name: 'a'.repeat(65) }), 'name'],
    ['a name with an underscore', validBody({ name: 'nightly_digest' }), 'name'],
    ['a name with a space', validBody({ name: 'nightly digest' }), 'name'],
    ['a missing name', without('name'), 'name'],
    ['a numeric name', validBody({ name: 12345 }), 'name'],
    ['an unknown environment', validBody({ environment: 'prod' }), 'environment'],
    ['an environment in capitals', validBody({ environment: 'Production' }), 'environment'],
    ['a missing environment', without('environment'), 'environment'],
    ['a missing businessOwner', without('businessOwner'), 'businessOwner'],
    ['a missing technicalOwner', without('technicalOwner'), 'technicalOwner'],
    ['an empty businessOwner', validBody({ businessOwner: '' }), 'businessOwner'],
    ['a blank technicalOwner', validBody({ technicalOwner: '   ' }), 'technicalOwner'],
    ['an owner over 128 characters', validBody({ businessOwner: 'o'.repeat(129) }), 'businessOwner'],
    ['a null owner', validBody({ technicalOwner: null }), 'technicalOwner'],
    ['a scope without an action', validBody({ allowedScopes: ['tickets'] }), 'allowedScopes'],
    ['a scope in capitals', validBody({ allowedScopes: ['Tickets:read'] }), 'allowedScopes'],
    ['a scope of three parts', validBody({ allowedScopes: ['a:b:c'] }), 'allowedScopes'],
    ['a scope with an empty action', validBody({ allowedScopes: ['tickets:'] }), 'allowedScopes'],
    ['a scope with an empty product', validBody({ allowedScopes: [':read'] }), 'allowedScopes'],
    ['a wildcard product', validBody({ allowedScopes: ['*:read'] }), 'allowedScopes'],
    ['a scope given as a string', validBody({ allowedScopes: 'tickets:read' }), 'allowedScopes'],
    ['a scope that is a number', validBody({ allowedScopes: [7] }), 'allowedScopes'],
    ['101 scopes', validBody({ allowedScopes: scopes(101) }), 'allowedScopes'],
    ['a boundary without a type', validBody({ boundaries: ['plant-7'] }), 'boundaries'],
    ['a boundary with a space', validBody({ boundaries: ['site:plant 7'] }), 'boundaries'],
    ['a boundary with an empty segment', validBody({ boundaries: ['site:a//asset:b'] }), 'boundaries'],
    ['a boundary with a trailing slash', validBody({ boundaries: ['site:a/'] }), 'boundaries'],
    ['a boundary with a .. value', validBody({ boundaries: ['site:..'] }), 'boundaries'],
    ['a boundary with a .. segment', validBody({ boundaries: ['site:a/..'] }), 'boundaries'],
    ['a boundary with a .. type', validBody({ boundaries: ['site:a/..:x'] }), 'boundaries'],
    ['a percent-encoded boundary', validBody({ boundaries: ['site:a/%2e%2e'] }), 'boundaries'],
    ['a boundary with a backslash', validBody({ boundaries: ['site:a\\asset:b'] }), 'boundaries'],
    ['a CIDR prefix with a leading zero', validBody({ allowedCidrs: ['10.0.0.0/08'] }), 'allowedCidrs'],
    ['boundaries given as a string', validBody({ boundaries: 'site:plant-7' }), 'boundaries'],
    ['boundaries sent as null', validBody({ boundaries: null }), 'boundaries'],
    ['a CIDR prefix over 32 bits', validBody({ allowedCidrs: ['10.0.0.0/33'] }), 'allowedCidrs'],
    ['a CIDR that is not one', validBody({ allowedCidrs: ['nonsense'] }), 'allowedCidrs'],
    ['an address without a prefix', validBody({ allowedCidrs: ['10.0.0.0'] }), 'allowedCidrs'],
    ['an IPv6 prefix over 128 bits', validBody({ allowedCidrs: ['2001:db8::/129'] }), 'allowedCidrs'],
    ['a CIDR with host bits set', validBody({ allowedCidrs: ['10.0.0.1/8'] }), 'allowedCidrs'],
    ['an octet over 255', validBody({ allowedCidrs: ['300.0.0.0/8'] }), 'allowedCidrs'],
    [
      'notifyBeforeDays equal to maxKeyAgeDays',
      validBody({ rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 90, autoRotate: false } }),
      'rotationPolicy.notifyBeforeDays',
    ],
    [
      'notifyBeforeDays over maxKeyAgeDays',
      validBody({ rotationPolicy: { maxKeyAgeDays: 30, notifyBeforeDays: 45, autoRotate: false } }),
      'rotationPolicy.notifyBeforeDays',
    ],
    [
      'a maxKeyAgeDays of 0',
      validBody({ rotationPolicy: { maxKeyAgeDays: 0, notifyBeforeDays: 0, autoRotate: false } }),
      'rotationPolicy.maxKeyAgeDays',
    ],
    [
      'a maxKeyAgeDays over ten years',
      validBody({ rotationPolicy: { maxKeyAgeDays: 3651, notifyBeforeDays: 14, autoRotate: false } }),
      'rotationPolicy.maxKeyAgeDays',
    ],
    [
      'a fractional maxKeyAgeDays',
      validBody({ rotationPolicy: { maxKeyAgeDays: 1.5, notifyBeforeDays: 0, autoRotate: false } }),
      'rotationPolicy.maxKeyAgeDays',
    ],
    [
      'a maxKeyAgeDays sent as a string',
      validBody({ rotationPolicy: { maxKeyAgeDays: '90', notifyBeforeDays: 14, autoRotate: false } }),
      'rotationPolicy.maxKeyAgeDays',
    ],
    [
      'a negative notifyBeforeDays',
      validBody({ rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: -1, autoRotate: false } }),
      'rotationPolicy.notifyBeforeDays',
    ],
    [
      'a rotationPolicy without autoRotate',
      validBody({ rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14 } }),
      'rotationPolicy.autoRotate',
    ],
    [
      'autoRotate as a string',
      validBody({ rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: 'no' } }),
      'rotationPolicy.autoRotate',
    ],
    ['a rotationPolicy that is a string', validBody({ rotationPolicy: 'monthly' }), 'rotationPolicy'],
    [
      'an unknown field in rotationPolicy',
      validBody({
        rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: false, graceDays: 2 },
      }),
      'rotationPolicy.graceDays',
    ],
    [
      'an ftp:// secretDelivery url',
      validBody({ secretDelivery: { url: 'ftp://vault.internal/keys' } }),
      'secretDelivery.url',
    ],
    [
      'a javascript: secretDelivery url',
      validBody({ secretDelivery: { url: 'javascript:alert(1)' } }),
      'secretDelivery.url',
    ],
    [
      'a secretDelivery url that is no URL',
      validBody({ secretDelivery: { url: 'vault' } }),
      'secretDelivery.url',
    ],
    ['a secretDelivery without url', validBody({ secretDelivery: {} }), 'secretDelivery.url'],
    [
      'a secretDelivery that is a string',
      validBody({ secretDelivery: 'https://vault.internal' }),
      'secretDelivery',
    ],
    [
      'an unknown field in secretDelivery',
      validBody({ secretDelivery: { url: 'https://vault.internal/keys', headers: { a: 'b' } } }),
      'secretDelivery.headers',
    ],
    ['abuseDetection as a string', validBody({ abuseDetection: 'yes' }), 'abuseDetection'],
    ['abuseDetection sent as null', validBody({ abuseDetection: null }), 'abuseDetection'],
    ['a numeric description', validBody({ description: 5 }), 'description'],
    ['a description over 1000 characters', validBody({ description: 'd'.repeat(1001) }), 'description'],
    ['an intendedScope that is an object', validBody({ intendedScope: { a: 1 } }), 'intendedScope'],
    ['a reason that is a number', validBody({ reason: 42 }), 'reason'],
    ['an unknown top-level field', validBody({ plan: 'gold' }), 'plan'],
    ['a status chosen by the caller', validBody({ status: 'disabled' }), 'status'],
    ['a tenantId chosen by the caller', validBody({ tenantId: 'someone-else' }), 'tenantId'],
    ['an id chosen by the caller', validBody({ id: 'sa_AAAAAAAAAAAAAAAAAAAA' }), 'id'],
    ['a version chosen by the caller', validBody({ version: 7 }), 'version'],
    ['a NUL character in the description', validBody({ description: 'a\u0000b' }), 'description'],
    ['a NUL character in an owner', validBody({ businessOwner: 'ops\u0000' }), 'businessOwner'],
    ['a NUL character in the reason', validBody({ reason: '\u0000' }), 'reason'],
    ['a lone high surrogate in the description', validBody({ description: 'a\ud800b' }), 'description'],
    ['a lone low surrogate in the intendedScope', validBody({ intendedScope: '\udc00' }), 'intendedScope'],
  ])('refuses %s', async (_label, body, field) => {
    const auth = await freshTenant();
    const events = await eventCount(api);
    const accounts = await accountCount();
    const res = await api.http.post('/v1/service-accounts').set(auth).send(body);
    expectInvalid(res, field);
    expect(await eventCount(api)).toBe(events);
    expect(await accountCount()).toBe(accounts);
  });

  it('refuses an empty body naming every required field', async () => {
    const auth = await freshTenant();
    const res = await api.http.post('/v1/service-accounts').set(auth).send({});
    expectProblem(res, 400, 'VALIDATION_FAILED');
    const fields = new Set(res.body.errors.map((e: { field: string }) => e.field));
    expect(fields).toEqual(new Set(['name', 'environment', 'businessOwner', 'technicalOwner']));
  });

  it('refuses malformed JSON with 400 problem JSON', async () => {
    const auth = await freshTenant();
    const events = await eventCount(api);
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .set('Content-Type', 'application/json')
      .send('{"name": "broken", "environment": ');
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(await eventCount(api)).toBe(events);
  });

  it('refuses a JSON array body', async () => {
    const auth = await freshTenant();
    const res = await api.http.post('/v1/service-accounts').set(auth).send([validBody()]);
    expectProblem(res, 400, 'VALIDATION_FAILED');
  });

  it('refuses a body that is not JSON with 415', async () => {
    const auth = await freshTenant();
    const events = await eventCount(api);
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .set('Content-Type', 'text/plain')
      .send('name=text-account');
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await eventCount(api)).toBe(events);
  });

  it('refuses a body over 64 KiB with 413', async () => {
    const auth = await freshTenant();
    const events = await eventCount(api);
    const res = await api.http
      .post('/v1/service-accounts')
      .set(auth)
      .send(validBody({ description: 'x'.repeat(70 * 1024) }));
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(await eventCount(api)).toBe(events);
  });
});

describe('POST /v1/service-accounts accepts what the contract allows', () => {
  it.each<[string, Record<string, unknown>]>([
    ['a product:* scope', { allowedScopes: ['product:*'] }],
    ['scopes with dots, dashes and underscores', { allowedScopes: ['my.product_1-x:read.all_2-y'] }],
    ['exactly 100 scopes', { allowedScopes: scopes(100) }],
    ['IPv6 CIDRs', { allowedCidrs: ['2001:db8::/32', '::1/128', 'fd00::/8'] }],
    ['IPv4 CIDRs at the edges', { allowedCidrs: ['0.0.0.0/0', '10.1.2.3/32'] }],
    ['nested boundaries', { boundaries: ['site:plant-7/asset-group:pumps/asset:P-101'] }],
    ['a name of 3 characters', { name: 'abc' }],
    ['a name of 64 characters', { name: 'a'.repeat(64) }],
    ['a name of digits and dashes', { name: '1-2-3' }],
    [
      'notifyBeforeDays one below maxKeyAgeDays',
      { rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 89, autoRotate: true } },
    ],
    [
      'notifyBeforeDays of 0',
      { rotationPolicy: { maxKeyAgeDays: 1, notifyBeforeDays: 0, autoRotate: false } },
    ],
    ['an http:// secretDelivery url', { secretDelivery: { url: 'http://vault-adapter:8080/keys' } }],
    ['null description and intendedScope', { description: null, intendedScope: null }],
    ['a null rotationPolicy and secretDelivery', { rotationPolicy: null, secretDelivery: null }],
    ['empty lists', { allowedScopes: [], boundaries: [], allowedCidrs: [] }],
    ['unicode text', { description: 'Zählt Tickets — 日本語 ✓ 😀', businessOwner: 'équipe-support 🛠' }],
  ])('accepts %s', async (_label, overrides) => {
    const auth = await freshTenant();
    const res = await api.http.post('/v1/service-accounts').set(auth).send(validBody(overrides));
    expect(res.status).toBe(201);
    for (const [field, value] of Object.entries(overrides)) {
      if (field === 'secretDelivery')
        expect(res.body.secretDelivery?.url ?? null).toEqual(
          value === null ? null : (value as { url: string }).url,
        );
      else if (['allowedScopes', 'allowedCidrs', 'boundaries'].includes(field))
        expect(res.body[field]).toEqual([...(value as string[])].sort());
      else expect(res.body[field]).toEqual(value);
    }
  });
});

describe('PATCH /v1/service-accounts/{id} refuses bad changes with 400 and changes nothing', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an environment', { environment: 'production' }, 'environment'],
    ['the same environment', { environment: 'staging' }, 'environment'],
    ['allowedScopes', { allowedScopes: ['tickets:read'] }, 'allowedScopes'],
    ['a bad name', { name: 'Bad_Name' }, 'name'],
    ['a null name', { name: null }, 'name'],
    ['a null businessOwner', { businessOwner: null }, 'businessOwner'],
    ['a blank technicalOwner', { technicalOwner: '  ' }, 'technicalOwner'],
    ['null boundaries', { boundaries: null }, 'boundaries'],
    ['null allowedCidrs', { allowedCidrs: null }, 'allowedCidrs'],
    ['a null abuseDetection', { abuseDetection: null }, 'abuseDetection'],
    ['a bad boundary', { boundaries: ['nope'] }, 'boundaries'],
    ['a boundary with a .. segment', { boundaries: ['site:plant-7/..'] }, 'boundaries'],
    ['a bad CIDR', { allowedCidrs: ['10.0.0.0/33'] }, 'allowedCidrs'],
    [
      'a bad rotationPolicy',
      { rotationPolicy: { maxKeyAgeDays: 10, notifyBeforeDays: 10, autoRotate: false } },
      'rotationPolicy.notifyBeforeDays',
    ],
    ['an ftp:// secretDelivery', { secretDelivery: { url: 'ftp://x.internal/y' } }, 'secretDelivery.url'],
    ['a status', { status: 'disabled' }, 'status'],
    ['a version', { version: 9 }, 'version'],
    ['an unknown field', { colour: 'blue' }, 'colour'],
    ['a NUL character in the description', { description: '\u0000' }, 'description'],
    ['a lone surrogate in an owner', { technicalOwner: 'x\udbff' }, 'technicalOwner'],
  ])('refuses %s', async (_label, changes, field) => {
    const auth = await freshTenant();
    const account = await createAccount(auth, {
      name: 'patch-target',
      description: 'original',
      boundaries: ['site:a'],
      allowedCidrs: ['10.0.0.0/8'],
    });
    const events = await eventCount(api);
    const res = await api.http.patch(`/v1/service-accounts/${account.id}`).set(auth).send(changes);
    expectInvalid(res, field);
    expect(await eventCount(api)).toBe(events);
    const after = await api.http.get(`/v1/service-accounts/${account.id}`).set(auth).expect(200);
    expect(after.body).toEqual(account);
  });

  it("says an account's environment is fixed at birth", async () => {
    const auth = await freshTenant();
    const account = await createAccount(auth);
    const res = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .send({ environment: 'production' });
    expectInvalid(res, 'environment');
    const error = res.body.errors.find((e: { field: string }) => e.field === 'environment');
    expect(error.message).toMatch(/fixed at birth/);
  });

  it('refuses malformed JSON', async () => {
    const auth = await freshTenant();
    const account = await createAccount(auth);
    const res = await api.http
      .patch(`/v1/service-accounts/${account.id}`)
      .set(auth)
      .set('Content-Type', 'application/json')
      .send('{"description": "x"');
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(
      (await api.http.get(`/v1/service-accounts/${account.id}`).set(auth).expect(200)).body.version,
    ).toBe(1);
  });

  it.each(['abc', '"1', '"-1"', '"1.5"', '"99999999999"'])(
    'refuses If-Match %s with 400 naming If-Match',
    async (ifMatch) => {
      const auth = await freshTenant();
      const account = await createAccount(auth);
      const res = await api.http
        .patch(`/v1/service-accounts/${account.id}`)
        .set(auth)
        .set('If-Match', ifMatch)
        .send({ description: 'x' });
      expectInvalid(res, 'If-Match');
      expect(
        (await api.http.get(`/v1/service-accounts/${account.id}`).set(auth).expect(200)).body.version,
      ).toBe(1);
    },
  );
});

describe('change bodies of the other routes', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['no scopes', {}, 'scopes'],
    ['an empty list of scopes', { scopes: [] }, 'scopes'],
    ['a bad scope', { scopes: ['Tickets:read'] }, 'scopes'],
    ['a scope of three parts', { scopes: ['a:b:c'] }, 'scopes'],
    ['scopes given as a string', { scopes: 'tickets:read' }, 'scopes'],
    ['101 scopes', { scopes: scopes(101) }, 'scopes'],
    ['an unknown field', { scopes: ['tickets:read'], approve: true }, 'approve'],
    ['a numeric reason', { scopes: ['tickets:read'], reason: 1 }, 'reason'],
  ])('POST .../scopes refuses %s', async (_label, body, field) => {
    const auth = await freshTenant();
    const account = await createAccount(auth);
    const events = await eventCount(api);
    const res = await api.http.post(`/v1/service-accounts/${account.id}/scopes`).set(auth).send(body);
    expectInvalid(res, field);
    expect(await eventCount(api)).toBe(events);
  });

  it('POST .../scopes refuses to hold more than 100 scopes in all', async () => {
    const auth = await freshTenant();
    const account = await createAccount(auth, { allowedScopes: scopes(99) });
    await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .send({ scopes: ['extra:one'] })
      .expect(200);
    const events = await eventCount(api);
    const res = await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .send({ scopes: ['extra:two'] });
    expectInvalid(res, 'scopes');
    expect(await eventCount(api)).toBe(events);
    // Re-granting what is held still works at the limit.
    await api.http
      .post(`/v1/service-accounts/${account.id}/scopes`)
      .set(auth)
      .send({ scopes: ['extra:one'] })
      .expect(200);
  });

  it.each<[string, 'post' | 'delete', string]>([
    ['disable', 'post', '/disable'],
    ['enable', 'post', '/enable'],
    ['delete', 'delete', ''],
    ['narrow', 'delete', '/scopes/tickets%3Aread'],
  ])('%s refuses a bad reason and unknown fields', async (_label, method, suffix) => {
    const auth = await freshTenant();
    const account = await createAccount(auth, { allowedScopes: ['tickets:read'] });
    const url = `/v1/service-accounts/${account.id}${suffix}`;
    const events = await eventCount(api);
    expectInvalid(await api.http[method](url).set(auth).send({ reason: 42 }), 'reason');
    expectInvalid(
      await api.http[method](url)
        .set(auth)
        .send({ reason: 'r'.repeat(1001) }),
      'reason',
    );
    expectInvalid(await api.http[method](url).set(auth).send({ reason: 'ok', force: true }), 'force');
    expect(await eventCount(api)).toBe(events);
  });
});

describe('GET /v1/service-accounts refuses bad queries with 400', () => {
  const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it.each<[string, string, string]>([
    ['limit=0', 'limit=0', 'limit'],
    ['limit=201', 'limit=201', 'limit'],
    ['limit=abc', 'limit=abc', 'limit'],
    ['limit=-1', 'limit=-1', 'limit'],
    ['limit=1.5', 'limit=1.5', 'limit'],
    ['status=bogus', 'status=bogus', 'status'],
    ['status=ACTIVE', 'status=ACTIVE', 'status'],
    ['environment=prod', 'environment=prod', 'environment'],
    ['a garbage cursor', 'cursor=garbage!!', 'cursor'],
    ['a cursor of random base64', `cursor=${Buffer.from('not json').toString('base64url')}`, 'cursor'],
    ['a cursor with a loose time', `cursor=${cursorOf(['1', 'sa_AAAAAAAAAAAAAAAAAAAA'])}`, 'cursor'],
    ['a cursor of an object', `cursor=${cursorOf({ createdAt: '2026-01-01T00:00:00.000Z' })}`, 'cursor'],
    [
      'a cursor with a NUL in its id',
      `cursor=${cursorOf(['2026-03-01T09:00:00.000Z', 'sa_\u0000'])}`,
      'cursor',
    ],
    [
      'a cursor with a foreign id',
      `cursor=${cursorOf(['2026-03-01T09:00:00.000Z', "x' or 1=1 --"])}`,
      'cursor',
    ],
    ['a cursor over 512 characters', `cursor=${'A'.repeat(513)}`, 'cursor'],
    ['a q over 200 characters', `q=${'q'.repeat(201)}`, 'q'],
    ['a q with a NUL character', 'q=%00', 'q'],
    ['an owner with a NUL character', 'owner=team%00', 'owner'],
    ['an unknown parameter', 'sort=name', 'sort'],
    ['a repeated limit', 'limit=1&limit=2', 'limit'],
  ])('refuses %s', async (_label, query, field) => {
    const auth = await freshTenant();
    const res = await api.http.get(`/v1/service-accounts?${query}`).set(auth);
    expectInvalid(res, field);
  });

  it('accepts limit=1 and limit=200', async () => {
    const auth = await freshTenant();
    await createAccount(auth, { name: 'one' });
    await createAccount(auth, { name: 'two' });
    const one = await api.http.get('/v1/service-accounts?limit=1').set(auth).expect(200);
    expect(one.body.items).toHaveLength(1);
    expect(one.body.nextCursor).toEqual(expect.any(String));
    const all = await api.http.get('/v1/service-accounts?limit=200').set(auth).expect(200);
    expect(all.body.items).toHaveLength(2);
  });
});
