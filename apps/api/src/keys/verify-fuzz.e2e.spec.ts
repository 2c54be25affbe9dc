import { isIP } from 'node:net';
import fc from 'fast-check';
import type { Response } from 'supertest';
import { DENIAL_CODES, checkOf, parseKey } from '@keyward/keys';
import {
  bearer,
  createTenant,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * DESIGN.md "Quality bars": the verify endpoint fuzzed with random, mangled, re-encoded and huge keys
 * and with bodies of any shape. Each answer is checked against an oracle written from API.md alone:
 * 200 `valid: false` with a listed code (or `valid: true` only for the exact key), 400 for a body of
 * the wrong shape, 413 over 64 KiB; never a 5xx.
 */

const MAX_BODY_BYTES = 64 * 1024;
const LIMITS = { scope: 200, resource: 2048, environment: 32, ip: 64, system: 200 } as const;

let api: TestApi;
let auth: Record<string, string>;
/** A staging key: scopes `tickets:*`, no boundaries of its own (the account's `site:plant-7`), account CIDR 10.20.0.0/16. */
let realKey: string;
let realKeyId: string;
/** A live key of another tenant: UNKNOWN to this tenant's verifier. */
let foreignKey: string;

beforeAll(async () => {
  api = await startTestApi();
  const t = await createTenant(api, 'fuzz');
  auth = bearer(await t.token('verifier'));
  const account = await api.http
    .post('/v1/service-accounts')
    .set(bearer(t.admin))
    .send({
      name: 'fuzzed',
      environment: 'staging',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['tickets:*'],
      boundaries: ['site:plant-7'],
      allowedCidrs: ['10.20.0.0/16'],
    })
    .expect(201);
  const key = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(bearer(t.admin))
    .send({ name: 'fuzzed-key', scopes: ['tickets:*'] })
    .expect(201);
  realKey = key.body.secret;
  realKeyId = key.body.id;
  const other = await createTenant(api, 'fuzz-other');
  const otherAccount = await api.http
    .post('/v1/service-accounts')
    .set(bearer(other.admin))
    .send({
      name: 'foreign',
      environment: 'staging',
      businessOwner: 'b',
      technicalOwner: 't',
      allowedScopes: ['tickets:*'],
    })
    .expect(201);
  const otherKey = await api.http
    .post(`/v1/service-accounts/${otherAccount.body.id}/keys`)
    .set(bearer(other.admin))
    .send({ name: 'foreign-key', scopes: ['tickets:*'] })
    .expect(201);
  foreignKey = otherKey.body.secret;
});
afterAll(async () => {
  await api?.close();
});

afterEach(() => expect(newServerErrors(api)).toEqual([]));

// ---- the oracle ----

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function storable(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s);
}

/** Every string in a JSON value, object keys included, is text PostgreSQL could store. */
function allStorable(value: unknown): boolean {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.every(allStorable);
  if (value && typeof value === 'object')
    return Object.entries(value).every(([k, v]) => storable(k) && allStorable(v));
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shortString(value: unknown, limit: number): boolean {
  return typeof value === 'string' && [...value].length <= limit;
}

/** VerifyDto's shape, read from API.md: `key` a string; the optional fields strings or a source object. */
function wellFormed(body: unknown): body is Record<string, unknown> & { key: string } {
  if (!isPlainObject(body)) return false;
  const known = ['key', 'scope', 'resource', 'environment', 'source'];
  if (Object.keys(body).some((k) => !known.includes(k))) return false;
  if (typeof body.key !== 'string') return false;
  for (const field of ['scope', 'resource', 'environment'] as const) {
    if (field in body && !shortString(body[field], LIMITS[field])) return false;
  }
  if ('source' in body) {
    const source = body.source;
    if (!isPlainObject(source)) return false;
    if (Object.keys(source).some((k) => k !== 'ip' && k !== 'system')) return false;
    if ('ip' in source && !(shortString(source.ip, LIMITS.ip) && isAddress(source.ip))) return false;
    if ('system' in source && !shortString(source.system, LIMITS.system)) return false;
  }
  return true;
}

/** One IPv4 or IPv6 address, no zone: anything else in source.ip is a 400. */
function isAddress(ip: unknown): boolean {
  return typeof ip === 'string' && isIP(ip) !== 0 && !ip.includes('%');
}

/**
 * A resource a boundary can cover: `type:value` segments joined by single slashes, neither part
 * made of dots only; anything else (dot segments, empty segments, encodings) is outside every boundary.
 */
function canonicalResource(resource: string): boolean {
  return resource
    .split('/')
    .every(
      (segment) =>
        /^[a-z0-9._-]{1,64}:[A-Za-z0-9._~-]{1,128}$/.test(segment) && !/(^|:)\.+(:|$)/.test(segment),
    );
}

function inAccountRange(ip: unknown): boolean {
  if (typeof ip !== 'string') return false;
  const m = /^(?:::ffff:)?10\.20\.(\d{1,3})\.(\d{1,3})$/i.exec(ip);
  return !!m && [m[1], m[2]].every((o) => Number(o) <= 255 && String(Number(o)) === o);
}

type Expected =
  { status: 413 } | { status: 400 } | { status: 200; valid: true } | { status: 200; codes: string[] };

/** What API.md says the answer to this body is. */
function expected(body: unknown): Expected {
  if (Buffer.byteLength(JSON.stringify(body)) > MAX_BODY_BYTES) return { status: 413 };
  if (!allStorable(body)) return { status: 400 };
  if (!wellFormed(body)) return { status: 400 };
  const { key } = body;
  if (key === foreignKey) return { status: 200, codes: ['UNKNOWN'] };
  if (key !== realKey) {
    // Anything but the exact key fails its form or checksum, or (form and checksum right) its lookup.
    return { status: 200, codes: parseKey(key) ? ['UNKNOWN'] : ['MALFORMED'] };
  }
  const source = body.source as { ip?: unknown } | undefined;
  if ('environment' in body && body.environment !== 'staging')
    return { status: 200, codes: ['ENVIRONMENT_MISMATCH'] };
  if (!inAccountRange(source?.ip)) return { status: 200, codes: ['IP_NOT_ALLOWED'] };
  const scope = body.scope as string | undefined;
  if (scope !== undefined && !scope.startsWith('tickets:'))
    return { status: 200, codes: ['INSUFFICIENT_SCOPE'] };
  const resource = body.resource as string | undefined;
  const inside = (r: string) =>
    canonicalResource(r) && (r === 'site:plant-7' || r.startsWith('site:plant-7/'));
  if (resource !== undefined && !inside(resource)) return { status: 200, codes: ['OUT_OF_BOUNDARY'] };
  return { status: 200, valid: true };
}

async function send(body: unknown): Promise<Response> {
  return api.http
    .post('/v1/verify')
    .set(auth)
    .set('Content-Type', 'application/json')
    .send(JSON.stringify(body));
}

function describeBody(body: unknown): string {
  const text = JSON.stringify(body);
  return text.length > 300 ? `${text.slice(0, 300)}... (${text.length} chars)` : text;
}

/** Sends the body and checks the answer against the oracle. */
async function check(body: unknown): Promise<void> {
  const want = expected(body);
  const res = await send(body);
  const got = { status: res.status, body: res.body as Record<string, unknown> };
  const context = describeBody(body);
  expect({ context, status: got.status }).toEqual({ context, status: want.status });
  if (want.status !== 200) {
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(got.body.code).toBe(want.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'VALIDATION_FAILED');
    expect(res.text).not.toContain(realKey);
    return;
  }
  if ('valid' in want) {
    expect({ context, body: got.body }).toEqual({
      context,
      body: expect.objectContaining({ valid: true, keyId: realKeyId }),
    });
    return;
  }
  expect({ context, body: got.body }).toEqual({ context, body: { valid: false, code: expect.any(String) } });
  expect(DENIAL_CODES).toContain(got.body.code);
  expect({ context, code: got.body.code }).toEqual({ context, code: want.codes[0] });
}

// ---- generators ----

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const anyString = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.tuple(fc.string({ maxLength: 10 }), loneSurrogate, fc.string({ maxLength: 10 })).map((p) => p.join('')),
  fc.stringMatching(/^kw_(live|stage|dev)_[0-9A-Za-z]{59}$/),
  fc.stringMatching(/^kw_[a-z]{0,6}_[0-9A-Za-z]{0,70}$/),
);
/** Any JSON value, null included: null is not a string, so an optional field sent as null is a 400. */
const anyJson = fc.jsonValue({ maxDepth: 2 });

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

type Mutation = (key: string) => string;
const char = fc.oneof(
  fc.constantFrom(...BASE62.split(''), '_', '-', ' ', '\n', '\t', '.', '/', '+', '=', '%'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  loneSurrogate,
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map((n) => (k: string) => k.slice(0, n % k.length)),
  fc.nat().map((n) => (k: string) => k.slice(1 + (n % k.length))),
  fc.string({ minLength: 1, maxLength: 8 }).map((s) => (k: string) => k + s),
  fc.string({ minLength: 1, maxLength: 8 }).map((s) => (k: string) => s + k),
  fc.nat().map((n) => (k: string) => {
    const i = n % k.length;
    const c = k[i];
    const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
    return k.slice(0, i) + flipped + k.slice(i + 1);
  }),
  fc.tuple(fc.nat(), char).map(([n, c]) => (k: string) => {
    const i = n % k.length;
    return k.slice(0, i) + c + k.slice(i + 1);
  }),
  fc.tuple(fc.nat(), char).map(([n, c]) => (k: string) => {
    const i = n % (k.length + 1);
    return k.slice(0, i) + c + k.slice(i);
  }),
  fc.nat().map((n) => (k: string) => {
    const i = n % k.length;
    return k.slice(0, i) + k.slice(i + 1);
  }),
  fc.nat().map((n) => (k: string) => {
    const i = n % (k.length - 1);
    return k.slice(0, i) + k[i + 1] + k[i] + k.slice(i + 2);
  }),
  // The body mangled and the checksum recomputed: only the lookup can refuse it.
  fc.tuple(fc.nat(), fc.constantFrom(...BASE62.split(''))).map(([n, c]) => (k: string) => {
    const body = k.slice(0, -6);
    const i = n % body.length;
    const changed = body.slice(0, i) + c + body.slice(i + 1);
    return changed + checkOf(changed);
  }),
);

/** The whole key re-encoded as a confused client or a log scrubber might send it. */
const encodings: Array<[string, Mutation]> = [
  ['base64', (k) => Buffer.from(k).toString('base64')],
  ['base64url', (k) => Buffer.from(k).toString('base64url')],
  ['hex', (k) => Buffer.from(k).toString('hex')],
  ['percent-encoded', (k) => [...Buffer.from(k)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')],
  ['encodeURIComponent (unchanged: the key is URL-safe)', (k) => encodeURIComponent(k)],
  ['JSON-quoted', (k) => JSON.stringify(k)],
  ['Bearer', (k) => `Bearer ${k}`],
  ['zero-width space inside', (k) => `${k.slice(0, 10)}\u200b${k.slice(10)}`],
  ['fullwidth', (k) => k.replace(/[A-Za-z0-9]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0))],
  ['Cyrillic k', (k) => k.replace(/^k/, '\u043a')],
  ['NFKD of a ligature', (k) => `${k.slice(0, -1)}\ufb01`],
  ['BOM before', (k) => `\ufeff${k}`],
  ['reversed', (k) => [...k].reverse().join('')],
  ['doubled', (k) => k + k],
];

// ---- properties (about 300 runs in all) ----

it('any string as the key answers MALFORMED (or 400/413 for text no body may hold), never a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(anyString, async (key) => check({ key })),
    { numRuns: 60 },
  );
});

it('a real key truncated, extended, case-flipped, substituted or re-checked is refused unless it is the key', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
      const key = mutations.reduce((k, m) => (k.length > 1 ? m(k) : k), realKey);
      await check({ key });
    }),
    { numRuns: 80 },
  );
});

it('a real key re-encoded is refused, except where the encoding leaves it unchanged', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...encodings), async ([, encode]) => check({ key: encode(realKey) })),
    { numRuns: 20 },
  );
  for (const [name, encode] of encodings) {
    const res = await send({ key: encode(realKey), source: { ip: '10.20.1.7' } });
    expect({ name, status: res.status, valid: res.body.valid }).toEqual({
      name,
      status: 200,
      valid: encode(realKey) === realKey,
    });
  }
});

it('very long keys, up to 60 KB, answer MALFORMED, or 413 once the body passes 64 KiB', async () => {
  const unit = fc.constantFrom('A', 'kw_live_', '\u00e9', '\u0939', '\u{1f600}', '\u200b');
  await fc.assert(
    fc.asyncProperty(unit, fc.integer({ min: 1_000, max: 60_000 }), async (u, bytes) => {
      const key = u.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(u))));
      await check({ key });
    }),
    { numRuns: 15 },
  );
  await check({ key: `${realKey}${'A'.repeat(60_000)}` });
  await check({ key: 'A'.repeat(MAX_BODY_BYTES) });
});

it('random bodies: 400 for the wrong shape, otherwise the code API.md orders first; never a 5xx', async () => {
  const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
  const tooLong = (limit: number) =>
    fc.integer({ min: limit + 1, max: limit + 50 }).map((n) => 'x'.repeat(n));
  const keyArb = fc.oneof(
    { arbitrary: fc.constant(realKey), weight: 12 },
    { arbitrary: fc.constant(foreignKey), weight: 1 },
    {
      arbitrary: fc
        .array(mutation, { minLength: 1, maxLength: 2 })
        .map((ms) => ms.reduce((k, m) => m(k), realKey)),
      weight: 1,
    },
    { arbitrary: anyString, weight: 1 },
    { arbitrary: anyJson, weight: 1 },
  );
  /** Mostly well-typed values, so most bodies reach the decision; sometimes too long or of another type. */
  const field = (typed: fc.Arbitrary<string>, limit: number) =>
    fc.oneof(
      { arbitrary: typed, weight: 10 },
      { arbitrary: tooLong(limit), weight: 1 },
      { arbitrary: anyJson, weight: 1 },
    );
  const environment = field(
    fc.oneof(
      { arbitrary: fc.constant('staging'), weight: 6 },
      { arbitrary: fc.constantFrom('production', 'development', 'Staging', 'stage', ''), weight: 2 },
      { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
    ),
    LIMITS.environment,
  );
  const ip = field(
    fc.oneof(
      {
        arbitrary: fc.constantFrom('10.20.1.7', '10.20.255.255', '10.20.0.0', '::ffff:10.20.1.7'),
        weight: 8,
      },
      { arbitrary: fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `10.20.${a}.${b}`), weight: 4 },
      {
        arbitrary: fc.constantFrom(
          '10.21.0.1',
          '2001:db8::1',
          '010.20.1.7',
          '10.20.1.7 ',
          '',
          '999.1.1.1',
          '10.20.1.7/33',
        ),
        weight: 2,
      },
      { arbitrary: fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 })), weight: 2 },
    ),
    LIMITS.ip,
  );
  const scope = field(
    fc.oneof(
      { arbitrary: fc.constantFrom('tickets:read', 'tickets:write', 'tickets:*'), weight: 6 },
      { arbitrary: fc.stringMatching(/^tickets:[a-z0-9._-]{1,20}$/), weight: 2 },
      {
        arbitrary: fc.constantFrom('tickets:', 'tickets', 'ticketsx:read', 'summaries:draft', ''),
        weight: 2,
      },
      { arbitrary: fc.string({ maxLength: 30 }), weight: 1 },
    ),
    LIMITS.scope,
  );
  const resource = field(
    fc.oneof(
      { arbitrary: fc.constantFrom('site:plant-7', 'site:plant-7/asset:1'), weight: 6 },
      { arbitrary: fc.stringMatching(/^site:plant-7(\/[a-z-]{1,10}:[A-Za-z0-9-]{1,10}){1,3}$/), weight: 2 },
      {
        arbitrary: fc.constantFrom('site:plant-70', 'site:plant-7/', 'x/site:plant-7', 'site:plant', ''),
        weight: 2,
      },
      {
        arbitrary: fc.constantFrom(
          'site:plant-7/../plant-8',
          'site:plant-7/./asset:1',
          'site:plant-7//asset:1',
          'site:plant-7/%2e%2e',
          'site:plant-7/asset:..',
          'site:plant-7/..:x',
          'site:plant-7\\..',
        ),
        weight: 2,
      },
      { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }), weight: 1 },
    ),
    LIMITS.resource,
  );
  const system = field(fc.string({ maxLength: 30 }), LIMITS.system);
  const source = fc.oneof(
    { arbitrary: fc.record({ ip, system: optional(system) }), weight: 10 },
    { arbitrary: fc.record({ ip: optional(ip), system: optional(system) }), weight: 2 },
    { arbitrary: fc.record({ ip, port: fc.nat() }), weight: 1 },
    { arbitrary: anyJson, weight: 1 },
  );
  // Names of Object.prototype members too: class-transformer drops them before the whitelist looks.
  const extra = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 10 },
    {
      arbitrary: fc.tuple(
        fc.constantFrom(
          'extra',
          'Key',
          'key ',
          'keyId',
          'scopes',
          'ip',
          '',
          '__proto__',
          'constructor',
          'toString',
        ),
        anyJson,
      ),
      weight: 1,
    },
  );
  const body = fc
    .record({
      key: fc.oneof({ arbitrary: keyArb, weight: 20 }, { arbitrary: fc.constant(undefined), weight: 1 }),
      scope: optional(scope),
      resource: optional(resource),
      environment: optional(environment),
      source: fc.option(source, { nil: undefined, freq: 6 }),
      extra,
      asArray: fc.nat(39).map((n) => n === 0),
    })
    .map(({ extra: more, asArray, ...fields }) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
      if (out.source && isPlainObject(out.source)) {
        out.source = Object.fromEntries(Object.entries(out.source).filter(([, v]) => v !== undefined));
      }
      // defineProperty: a plain assignment to __proto__ would set the prototype, not a field.
      if (more) Object.defineProperty(out, more[0], { value: more[1], enumerable: true, writable: true });
      return asArray ? [out] : out;
    });
  await fc.assert(fc.asyncProperty(body, check), { numRuns: 130 });
});

// ---- the gateway check: the same decision from headers ----

/** What a header can carry: node refuses to send anything else, so no gateway could either. */
function headerSafe(value: string): boolean {
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(value) && value.trim() === value && value.length > 0;
}

async function gatewayCheck(headers: Record<string, string>, path = '/v1/gateway/check'): Promise<Response> {
  return api.http.get(path).set({ 'X-Keyward-Verifier': auth.Authorization, ...headers });
}

function expectGatewayAnswer(res: Response, key: string, context: string): void {
  expect({ context, server: res.status < 500 }).toEqual({ context, server: true });
  if (key === realKey) {
    expect({ context, status: res.status }).toEqual({ context, status: 200 });
    return;
  }
  expect({ context, status: res.status }).toEqual({ context, status: 401 });
  expect({ context, code: res.headers['x-keyward-code'] }).toEqual({
    context,
    code: expect.stringMatching(/^(MALFORMED|UNKNOWN)$/),
  });
  expect(res.headers['x-keyward-key-id']).toBeUndefined();
}

it('gateway check: random and truncated keys in X-Api-Key or Authorization answer 401, never a 5xx', async () => {
  const keys = fc.oneof(
    anyString,
    fc
      .array(mutation, { minLength: 1, maxLength: 3 })
      .map((mutations) => mutations.reduce((k, m) => (k.length > 1 ? m(k) : k), realKey)),
    fc.constant(foreignKey),
  );
  await fc.assert(
    fc.asyncProperty(keys, fc.boolean(), async (key, asBearer) => {
      fc.pre(headerSafe(key));
      // From inside the account's CIDRs, so the real key, when a mutation leaves it whole, is valid.
      const headers: Record<string, string> = {
        'X-Forwarded-For': '10.20.1.7',
        ...(asBearer ? { Authorization: `Bearer ${key}` } : { 'X-Api-Key': key }),
      };
      expectGatewayAnswer(
        await gatewayCheck(headers),
        key,
        `${asBearer ? 'Authorization' : 'X-Api-Key'} ${JSON.stringify(key)}`,
      );
    }),
    { numRuns: 120 },
  );
});

it('gateway check: any scope, resource, environment, system and source ip answer a listed status, never a 5xx', async () => {
  const field = fc.oneof(
    anyString,
    fc.constantFrom('tickets:read', 'site:plant-7/asset:1', 'staging', '10.20.1.7'),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.record(
        {
          'X-Keyward-Scope': field,
          'X-Keyward-Resource': field,
          'X-Keyward-Environment': field,
          'X-Keyward-System': field,
          'X-Forwarded-For': field,
          'X-Real-IP': field,
        },
        { requiredKeys: [] },
      ),
      fc.string({ maxLength: 40 }),
      async (headers, appended) => {
        fc.pre(Object.values(headers).every(headerSafe));
        const path = `/v1/gateway/check/${encodeURIComponent(appended)}`;
        const res = await gatewayCheck({ ...headers, 'X-Api-Key': realKey }, path);
        const context = JSON.stringify({
          headers,
          path,
          status: res.status,
          code: res.headers['x-keyward-code'],
        });
        expect({ context, status: [200, 403].includes(res.status) }).toEqual({ context, status: true });
        if (res.status === 403) expect(DENIAL_CODES).toContain(res.headers['x-keyward-code']);
      },
    ),
    { numRuns: 80 },
  );
});
