import type Redis from 'ioredis';
import type { Response } from 'supertest';
import { randomBase62 } from '@keyward/core';
import { issueKeySecret } from '@keyward/keys';
import { HOT_PATH_TIMEOUT_MS, REDIS } from '@keyward/redis';
import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
  startInstance,
  serverErrorsIn,
  type ApiInstance,
} from '../../../../test/support/api';
import { TcpProxy } from '../../../../test/support/tcp-proxy';
import { waitFor } from '../../../../test/support/wait';

/**
 * Failed authentications are throttled per source ip, in Redis, across instances: 401 up to the
 * limit (the default, 100 per 5 minutes), then 429 RATE_LIMITED with Retry-After. A valid
 * credential passes from a throttled ip; other ips are untouched; the window ends on the clock.
 * Two instances listen on ports of their own and share the test's Redis prefix and clock; a third
 * reaches Redis through a proxy the test takes away. Requests come from 127.0.0.1, a trusted
 * proxy (trustProxy loopback), so X-Forwarded-For names the source ip.
 */

const LIMIT = 100;
const WINDOW_MS = 300_000;

let api: TestApi;
let one: ApiInstance;
let two: ApiInstance;

let admin: string;
let verifier: string;
let tenantId: string;

beforeAll(async () => {
  api = await startTestApi();
  expect(api.config.authFailureLimit).toBe(LIMIT);
  expect(api.config.authFailureWindowMs).toBe(WINDOW_MS);
  one = await startInstance(api);
  two = await startInstance(api);
  const t = await createTenant(api, 'throttle');
  tenantId = t.tenantId;
  admin = t.admin;
  verifier = await t.token('verifier');
});
afterAll(async () => {
  await one?.app.close();
  await two?.app.close();
  await api?.close();
});
afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
  expect(serverErrorsIn(one.logs())).toEqual([]);
  expect(serverErrorsIn(two.logs())).toEqual([]);
});

let ipSeq = 0;
/** A source ip no other test uses (TEST-NET-2), so no test depends on another's counts. */
function freshIp(): string {
  ipSeq += 1;
  return `198.51.100.${ipSeq}`;
}

/** Bad credentials of every kind: unknown operator tokens, keys that fail their check, no form at all. */
function badToken(i: number): string {
  switch (i % 3) {
    case 0:
      return `kwop_${randomBase62(43)}`;
    case 1:
      return `kw_live_${randomBase62(40)}`;
    default:
      return `guess-${randomBase62(20)}`;
  }
}

function probe(on: ApiInstance | TestApi, ip: string, token: string): Promise<Response> {
  return on.http.get(`/v1/operators?tenantId=${tenantId}`).set({ ...bearer(token), 'X-Forwarded-For': ip });
}

/** `n` bad tokens from `ip`, one after another; the statuses in order. */
async function guess(on: ApiInstance | TestApi, ip: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await probe(on, ip, badToken(i))).status);
  return statuses;
}

/** How many of each status, in order of first appearance: [[401, 100], [429, 300]]. */
function runs(statuses: number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const s of statuses) {
    const last = out[out.length - 1];
    if (last && last[0] === s) last[1] += 1;
    else out.push([s, 1]);
  }
  return out;
}

/** Seconds to the end of the current window, as Retry-After should say. */
function secondsLeft(): number {
  const now = api.clock.now().getTime();
  return Math.ceil(((Math.floor(now / WINDOW_MS) + 1) * WINDOW_MS - now) / 1000);
}

async function scrape(on: ApiInstance): Promise<{ shared: number; local: number; throttled: number }> {
  const text = (await on.http.get('/metrics').expect(200)).text;
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    shared: value(/^keyward_auth_failures_total\{counter="shared"\} (\d+)$/m),
    local: value(/^keyward_auth_failures_total\{counter="local"\} (\d+)$/m),
    throttled: value(/^keyward_auth_throttled_total (\d+)$/m),
  };
}

it('answers 401 to the first 100 bad tokens from one ip, then 429 RATE_LIMITED with Retry-After', async () => {
  const ip = freshIp();
  const statuses = await guess(one, ip, 400);
  console.warn(`auth-throttle: 400 bad tokens from one ip answered ${JSON.stringify(runs(statuses))}`);
  expect(runs(statuses)).toEqual([
    [401, LIMIT],
    [429, 400 - LIMIT],
  ]);
  const refused = await probe(one, ip, badToken(0));
  expectProblem(refused, 429, 'RATE_LIMITED');
  expect(refused.headers['retry-after']).toBe(String(secondsLeft()));
  expect(refused.body.detail).toMatch(/too many failed authentications/);
  // Said once at warn; the tokens tried are never logged. (Nest's logger is one per process, so
  // the line is in whichever instance's log; in production each process has one.)
  const logs = [api.logs(), one.logs(), two.logs()].join('');
  expect(logs.split('over the limit; further failures answer 429').length - 1).toBe(1);
  expect(logs).toContain(`"sourceIp":"${ip}"`);
  expect(logs).not.toMatch(/kwop_[0-9A-Za-z]{43}|kw_live_[0-9A-Za-z]{40}|guess-/);
});

it('lets every kind of valid credential through from a throttled ip, and keeps refusing its bad ones', async () => {
  const ip = freshIp();
  await guess(one, ip, LIMIT + 1);
  const key = await one.http
    .post('/v1/service-accounts')
    .set(bearer(admin))
    .send({
      name: 'reader',
      environment: 'staging',
      businessOwner: 'platform',
      technicalOwner: 'platform',
      allowedScopes: ['keyward:read'],
    })
    .expect(201)
    .then((account) =>
      one.http
        .post(`/v1/service-accounts/${account.body.id}/keys`)
        .set(bearer(admin))
        .send({ name: 'reader', scopes: ['keyward:read'] })
        .expect(201),
    );
  for (const on of [one, two]) {
    expect((await probe(on, ip, admin)).status).toBe(200);
    expect((await probe(on, ip, BOOTSTRAP_TOKEN)).status).toBe(200);
    expect((await probe(on, ip, key.body.secret)).status).toBe(200);
    const verified = await on.http
      .post('/v1/verify')
      .set({ ...bearer(verifier), 'X-Forwarded-For': ip })
      .send({ key: key.body.secret });
    expect(verified.status).toBe(200);
    expect(verified.body.valid).toBe(true);
    expectProblem(await probe(on, ip, badToken(1)), 429, 'RATE_LIMITED');
  }
  // A valid credential that may not do this is 403, not 429: it authenticated.
  const forbidden = await one.http
    .post('/v1/tenants')
    .set({ ...bearer(verifier), 'X-Forwarded-For': ip })
    .send({ id: 'nope', name: 'nope' });
  expectProblem(forbidden, 403, 'FORBIDDEN');
});

it('leaves other ips alone: another address, the direct peer, and another IPv6 /64', async () => {
  const ip = freshIp();
  await guess(one, ip, LIMIT + 1);
  expect((await probe(one, ip, badToken(0))).status).toBe(429);
  expectProblem(await probe(one, freshIp(), badToken(0)), 401, 'UNAUTHENTICATED');
  // No X-Forwarded-For: the source is the peer itself, 127.0.0.1.
  const direct = await one.http.get(`/v1/operators?tenantId=${tenantId}`).set(bearer(badToken(0)));
  expectProblem(direct, 401, 'UNAUTHENTICATED');
});

it('counts an IPv6 source by its /64, so fresh addresses in it do not escape the limit', async () => {
  const statuses: number[] = [];
  for (let i = 1; i <= LIMIT + 5; i++) {
    statuses.push((await probe(one, `2001:db8:7:1::${i.toString(16)}`, badToken(i))).status);
  }
  expect(runs(statuses)).toEqual([
    [401, LIMIT],
    [429, 5],
  ]);
  expect((await probe(one, '2001:db8:7:2::1', badToken(0))).status).toBe(401);
});

it('shares the limit between two instances: 50 failures on each, then either answers 429', async () => {
  const ip = freshIp();
  const first = await guess(one, ip, LIMIT / 2);
  const second = await guess(two, ip, LIMIT / 2);
  expect([...first, ...second]).toEqual(Array<number>(LIMIT).fill(401));
  expectProblem(await probe(two, ip, badToken(0)), 429, 'RATE_LIMITED');
  expectProblem(await probe(one, ip, badToken(0)), 429, 'RATE_LIMITED');
  expect((await probe(api, ip, badToken(2))).status).toBe(429);
});

it('answers 401 again once the window has ended', async () => {
  const ip = freshIp();
  await guess(one, ip, LIMIT + 1);
  const refused = await probe(two, ip, badToken(0));
  expect(refused.status).toBe(429);
  const wait = Number(refused.headers['retry-after']);
  expect(wait).toBeGreaterThan(0);
  expect(wait).toBeLessThanOrEqual(WINDOW_MS / 1000);
  api.clock.advance((wait - 1) * 1000);
  expect((await probe(one, ip, badToken(0))).status).toBe(429);
  api.clock.advance(1000);
  expectProblem(await probe(one, ip, badToken(0)), 401, 'UNAUTHENTICATED');
  expectProblem(await probe(two, ip, badToken(1)), 401, 'UNAUTHENTICATED');
});

it('shows the failures and the throttled answers on /metrics', async () => {
  const before = await scrape(one);
  await guess(one, freshIp(), LIMIT + 5);
  const after = await scrape(one);
  console.warn(
    `auth-throttle: /metrics after ${LIMIT + 5} bad tokens: failures +${after.shared - before.shared} (shared), ` +
      `throttled +${after.throttled - before.throttled}`,
  );
  expect(after.shared - before.shared).toBe(LIMIT + 5);
  expect(after.throttled - before.throttled).toBe(5);
  expect(after.local).toBe(before.local);
});

describe('the gateway check', () => {
  function check(ip: string, headers: Record<string, string>): Promise<Response> {
    return one.http.get('/v1/gateway/check').set({ 'X-Forwarded-For': ip, ...headers });
  }

  it('throttles bad verifier credentials: VERIFIER_UNAUTHENTICATED until the limit, then 429', async () => {
    const ip = freshIp();
    const statuses: string[] = [];
    for (let i = 0; i <= LIMIT; i++) {
      const res = await check(ip, { 'X-Keyward-Verifier': `Bearer ${badToken(i)}`, 'X-Api-Key': 'kw_x' });
      statuses.push(`${res.status} ${res.headers['x-keyward-code']}`);
    }
    expect(statuses.slice(0, LIMIT)).toEqual(Array<string>(LIMIT).fill('401 VERIFIER_UNAUTHENTICATED'));
    const refused = await check(ip, { 'X-Keyward-Verifier': `Bearer ${badToken(0)}` });
    expectProblem(refused, 429, 'RATE_LIMITED');
    expect(refused.headers['x-keyward-code']).toBe('RATE_LIMITED');
    expect(refused.headers['retry-after']).toBe(String(secondsLeft()));
    // The gateway's valid credential still gets its answer about the caller's key.
    const answered = await check(ip, { 'X-Keyward-Verifier': `Bearer ${verifier}`, 'X-Api-Key': 'kw_x' });
    expect(answered.status).toBe(401);
    expect(answered.headers['x-keyward-code']).toBe('MALFORMED');
  });

  it('does not count the caller keys it refuses: they are verify answers, not failed authentications', async () => {
    const ip = freshIp();
    const before = await scrape(one);
    const codes = new Set<string>();
    for (let i = 0; i < LIMIT + 20; i++) {
      const res = await check(ip, {
        'X-Keyward-Verifier': `Bearer ${verifier}`,
        Authorization: `Bearer ${i % 2 ? badToken(1) : issueKeySecret(`key_${randomBase62(20)}`, 'production').secret}`,
      });
      expect(res.status).toBe(401);
      codes.add(res.headers['x-keyward-code']);
    }
    expect([...codes].sort()).toEqual(['MALFORMED', 'UNKNOWN']);
    const after = await scrape(one);
    expect(after.shared).toBe(before.shared);
    // And the ip's own first bad credential is its first failure: 401.
    expect((await probe(one, ip, badToken(0))).status).toBe(401);
  });
});

describe('with Redis unreachable', () => {
  let proxy: TcpProxy;
  let away: ApiInstance;

  beforeAll(async () => {
    proxy = TcpProxy.forUrl(api.config.redisUrl);
    await proxy.start();
    away = await startInstance(api, { ...api.config, redisUrl: proxy.url(api.config.redisUrl) });
  });
  afterAll(async () => {
    await proxy?.refuse();
    await away?.app.close();
  });
  afterEach(() => {
    // 503 would be the failure this test rules out; nothing else may be 5xx either.
    expect(serverErrorsIn(away.logs())).toEqual([]);
  });

  it('answers 401 and counts on the instance alone (429 past the limit), never 503, and valid credentials pass at once', async () => {
    const ip = freshIp();
    // Ten failures counted in Redis first: the instance goes on from the shared count.
    expect(await guess(away, ip, 10)).toEqual(Array<number>(10).fill(401));
    proxy.hang();
    const before = await scrape(away);
    const timings: number[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const started = process.hrtime.bigint();
      statuses.push((await probe(away, ip, badToken(i))).status);
      timings.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    const after = await scrape(away);
    const slowest = Math.max(...timings);
    console.warn(
      `auth-throttle: Redis hung: ${LIMIT} bad tokens answered ${JSON.stringify(runs(statuses))}, ` +
        `slowest ${slowest.toFixed(1)} ms, median ${timings.sort((a, b) => a - b)[LIMIT / 2].toFixed(1)} ms; ` +
        `/metrics local +${after.local - before.local}, throttled +${after.throttled - before.throttled}`,
    );
    expect(runs(statuses)).toEqual([
      [401, LIMIT - 10],
      [429, 10],
    ]);
    // A hung command is given up after the hot-path bound; margin for a loaded machine.
    expect(slowest).toBeLessThan(HOT_PATH_TIMEOUT_MS + 150);
    expect(after.local - before.local).toBeGreaterThan(0);
    expect(after.throttled - before.throttled).toBe(10);
    // Valid credentials touch no Redis: they pass while it hangs, without waiting for it.
    const started = Date.now();
    for (let i = 0; i < 5; i++) expect((await probe(away, ip, admin)).status).toBe(200);
    const validMs = (Date.now() - started) / 5;
    console.warn(
      `auth-throttle: Redis hung: a valid credential from the throttled ip took ${validMs.toFixed(1)} ms`,
    );
    expect(validMs).toBeLessThan(HOT_PATH_TIMEOUT_MS);

    await proxy.refuse();
    expectProblem(await probe(away, freshIp(), badToken(0)), 401, 'UNAUTHENTICATED');
    expectProblem(await probe(away, ip, badToken(0)), 429, 'RATE_LIMITED');
    expect((await probe(away, ip, admin)).status).toBe(200);
  });

  it('counts in Redis again once it is back', async () => {
    await proxy.pass();
    await waitFor(
      'the instance to reach Redis again',
      async () => away.app.get<Redis>(REDIS).status === 'ready',
    );
    const ip = freshIp();
    const before = await scrape(away);
    await guess(away, ip, 3);
    const after = await scrape(away);
    expect(after.shared - before.shared).toBe(3);
    expect(after.local).toBe(before.local);
    // Shared again: the other instances see these three.
    await guess(one, ip, LIMIT - 3);
    expect((await probe(two, ip, badToken(0))).status).toBe(429);
  });
});
