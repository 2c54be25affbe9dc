import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type autocannon from 'autocannon';
import { loadConfig } from '@keyward/config';
import { ID_PREFIX, newId, randomBase62 } from '@keyward/core';
import { checkOf, issueKeySecret } from '@keyward/keys';
import {
  AnswerTally,
  call,
  cleanup,
  databaseUrlNamed,
  deleteRedisKeys,
  dropDatabase,
  expectCall,
  freshDatabase,
  load,
  mapLimit,
  startApiProcess,
  startServerProcess,
  table,
  type LoadSettings,
  type ServerLog,
  round,
  elapsed,
} from './support';

/**
 * DESIGN.md "The verify path" is held to a benchmark: POST /v1/verify and the gateway check
 * against a bare Fastify server (the framework ceiling, in its own process) measured in the same
 * run, on a fresh database, through the real HTTP API running in its own process.
 */

const DATABASE = 'keyward_bench';
const REDIS_PREFIX = 'kwbench';
const TENANT = 'bench';
const PLAIN_KEYS = 200;
const BOUNDED_KEYS = 10;
const LIMITED_KEYS = 50;
/** Never reached in a run: the rate-limited run measures the limiter's cost, not its refusals. */
const LIMIT = { limit: 1_000_000, windowSeconds: 3600 };
const ACCOUNT_BOUNDARY = 'site:plant-7';
const RESOURCE = 'site:plant-7/asset:P-101';
const SETTINGS: LoadSettings = { connections: 50, pipelining: 1, warmupSeconds: 2, durationSeconds: 10 };
const API_MODE =
  'child process: bench/api-server.ts (createApi of apps/api/src/app.ts under ts-node --transpile-only), ' +
  'NODE_ENV=production, LOG_LEVEL=info (the service default); bare Fastify: bench/bare-server.ts; ' +
  'autocannon in the parent process; no worker process';

interface IssuedKey {
  id: string;
  secret: string;
}

interface VerifyAnswerBody {
  valid?: boolean;
  keyId?: string;
  code?: string;
  rateLimit?: unknown;
}

interface RunSpec {
  name: string;
  description: string;
  /** Which server: Keyward's API, or the bare Fastify ceiling. */
  target?: 'api' | 'bare';
  method: 'GET' | 'POST';
  path: string;
  token?: string;
  /** The gateway's own credential, in X-Keyward-Verifier. */
  gatewayToken?: string;
  /** A fixed body, where the run's request does not set one per call. */
  body?: string;
  request: autocannon.Request;
  tally: AnswerTally;
}

interface RunResult {
  name: string;
  description: string;
  request: string;
  authenticated: boolean;
  requestsPerSecond: { mean: number; stddev: number; min: number; max: number };
  requestsTotal: number;
  durationSeconds: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; p99_9: number; max: number };
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  ratioToBare: number | null;
  /** Every answer of the warm-up and the measured run, checked in onResponse. */
  answers: { checked: number; wrong: number; samples: string[] };
}

interface ManualCheck {
  when: 'before' | 'after';
  name: string;
  ok: boolean;
  expected: string;
  got: string;
}

export async function verifyBench(): Promise<number> {
  const startedAt = Date.now();
  const bootstrapToken = randomBase62(40);
  const databaseUrl = databaseUrlNamed(DATABASE);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    NODE_ENV: 'production',
    KEYWARD_BOOTSTRAP_TOKEN: bootstrapToken,
    KEYWARD_ENCRYPTION_KEY: randomBase62(40),
    LOG_LEVEL: 'info',
    KEYWARD_REDIS_PREFIX: REDIS_PREFIX,
  };
  const config = loadConfig(env);
  const loadBefore = os.loadavg();
  if (loadBefore[0] > os.cpus().length / 2) {
    console.log(
      `note: load average ${loadBefore.map((n) => n.toFixed(2)).join(' ')} on ${os.cpus().length} cpus ` +
        'before the bench: other work is running, so the numbers are noisy',
    );
  }

  console.log(`verify benchmark: database ${DATABASE}, Redis prefix ${REDIS_PREFIX}`);
  console.log(`API: ${API_MODE}`);
  // A run that was killed earlier may have left its keys behind; they are ours by prefix.
  await deleteRedisKeys(config.redisUrl, REDIS_PREFIX);
  cleanup.add('delete Redis keys', async () => {
    const n = await deleteRedisKeys(config.redisUrl, REDIS_PREFIX);
    console.log(`cleanup: deleted ${n} Redis keys under ${REDIS_PREFIX}:`);
  });
  cleanup.add(`drop database ${DATABASE}`, () => dropDatabase(databaseUrl));
  await freshDatabase(databaseUrl);

  const bare = await startServerProcess('bare-server.ts', env, 30_000);
  cleanup.add('stop the bare Fastify server', () => bare.stop());
  const api = await startApiProcess(env, 30_000);
  cleanup.add('stop the API', () => api.stop());
  const base = api.baseUrl;
  console.log(`API pid ${api.pid} listening on ${base} (${elapsed(startedAt)})`);

  // --- Fixture, through the HTTP API as a first user would build it.
  await expectCall(201, base, 'POST', '/v1/tenants', {
    token: bootstrapToken,
    body: { id: TENANT, name: 'Bench' },
  });
  const operator = async (role: string) =>
    (
      await expectCall<{ token: string }>(201, base, 'POST', '/v1/operators', {
        token: bootstrapToken,
        body: { tenantId: TENANT, name: `bench-${role}`, role },
      })
    ).token;
  const admin = await operator('admin');
  const verifier = await operator('verifier');
  await expectCall(200, base, 'PATCH', '/v1/policy', {
    token: admin,
    body: { maxActiveKeys: 1000, reason: 'benchmark: 200+ keys on one account' },
  });
  const account = await expectCall<{ id: string }>(201, base, 'POST', '/v1/service-accounts', {
    token: admin,
    body: {
      name: 'bench-verify',
      environment: 'production',
      businessOwner: 'bench',
      technicalOwner: 'bench',
      allowedScopes: ['tickets:read', 'tickets:write'],
      boundaries: [ACCOUNT_BOUNDARY],
    },
  });
  const issue = (name: string, extra: Record<string, unknown> = {}) =>
    expectCall<IssuedKey>(201, base, 'POST', `/v1/service-accounts/${account.id}/keys`, {
      token: admin,
      body: { name, scopes: ['tickets:read'], ...extra },
    });
  const plain = await mapLimit(range(PLAIN_KEYS), 4, (i) => issue(`bench-key-${i}`));
  const bounded = await mapLimit(range(BOUNDED_KEYS), 4, (i) =>
    issue(`bench-bounded-${i}`, { boundaries: [`${RESOURCE}`] }),
  );
  const elsewhere = await issue('bench-elsewhere', { boundaries: [`${ACCOUNT_BOUNDARY}/asset:P-999`] });
  const limited = await mapLimit(range(LIMITED_KEYS), 4, (i) =>
    issue(`bench-limited-${i}`, { rateLimit: LIMIT }),
  );
  const unknownKeys = range(PLAIN_KEYS).map(() => issueKeySecret(newId(ID_PREFIX.key), 'production').secret);
  console.log(
    `fixture: tenant ${TENANT}, account ${account.id}, ${plain.length} keys + ${bounded.length} bounded + 1 ` +
      `out of the resource's boundary, ${limited.length} rate-limited, ${unknownKeys.length} unknown ` +
      `well-formed keys (${elapsed(startedAt)})`,
  );

  // --- Answers checked by hand, before and after the load.
  const manual: ManualCheck[] = [];
  const checkByHand = async (when: 'before' | 'after') => {
    const verify = async (
      name: string,
      body: Record<string, unknown>,
      expected: Partial<VerifyAnswerBody>,
    ) => {
      const answer = await call(base, 'POST', '/v1/verify', { token: verifier, body });
      const got = answer.body as VerifyAnswerBody;
      const ok =
        answer.status === 200 &&
        Object.entries(expected).every(([field, value]) => got?.[field as keyof VerifyAnswerBody] === value);
      manual.push({
        when,
        name,
        ok,
        expected: `200 ${JSON.stringify(expected)}`,
        got: `${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`,
      });
    };
    for (const key of [plain[0], plain[plain.length - 1]]) {
      await verify('valid key', { key: key.secret }, { valid: true, keyId: key.id, rateLimit: null });
    }
    await verify('unknown key', { key: unknownKeys[0] }, { valid: false, code: 'UNKNOWN' });
    await verify(
      'known id, other secret',
      { key: otherSecret(plain[1].secret) },
      { valid: false, code: 'UNKNOWN' },
    );
    await verify('scope and resource', scopedBody(bounded[0].secret), { valid: true, keyId: bounded[0].id });
    await verify('resource outside the key', scopedBody(elsewhere.secret), {
      valid: false,
      code: 'OUT_OF_BOUNDARY',
    });
    await verify(
      'scope not granted',
      { key: plain[2].secret, scope: 'tickets:write' },
      { valid: false, code: 'INSUFFICIENT_SCOPE' },
    );
    await verify('malformed key', { key: 'kw_live_nope' }, { valid: false, code: 'MALFORMED' });
  };
  await checkByHand('before');

  // --- The load runs.
  const json = { 'content-type': 'application/json' };
  const verifyRequests = (bodies: string[], expect: (answer: VerifyAnswerBody, index: number) => boolean) => {
    const tally = new AnswerTally();
    let next = 0;
    const request: autocannon.Request = {
      setupRequest: (req, context) => {
        const index = next++ % bodies.length;
        context.index = index;
        return { ...req, body: bodies[index] };
      },
      onResponse: (status, body, context) => {
        let ok = false;
        if (status === 200) {
          try {
            ok = expect(JSON.parse(body) as VerifyAnswerBody, context.index as number);
          } catch {
            ok = false;
          }
        }
        tally.record(ok, () => `${status} ${body} (request ${String(context.index)})`);
      },
    };
    return { request, tally };
  };
  const fixed = (expected: (status: number, body: string) => boolean) => {
    const tally = new AnswerTally();
    const request: autocannon.Request = {
      onResponse: (status, body) => tally.record(expected(status, body), () => `${status} ${body}`),
    };
    return { request, tally };
  };

  const scopedKeys = [...plain, ...bounded];
  const gatewayPath = `/v1/gateway/check?scope=tickets:read&resource=${encodeURIComponent(RESOURCE)}`;
  const gatewayRequests = () => {
    const tally = new AnswerTally();
    let next = 0;
    const request: autocannon.Request = {
      setupRequest: (req, context) => {
        const index = next++ % scopedKeys.length;
        context.index = index;
        return { ...req, headers: { ...req.headers, 'x-api-key': scopedKeys[index].secret } };
      },
      onResponse: (status, _body, context, headers) => {
        const ok = status === 200 && headers['x-keyward-key-id'] === scopedKeys[context.index as number].id;
        tally.record(ok, () => `${status} ${JSON.stringify(headers)} (request ${String(context.index)})`);
      },
    };
    return { request, tally };
  };
  const runs: RunSpec[] = [
    {
      name: 'bare fastify',
      description: 'the ceiling: a bare Fastify server answering a small JSON POST, its own process',
      target: 'bare',
      method: 'POST',
      path: '/verify',
      ...fixed((status, body) => status === 200 && body.includes('"valid":true')),
      body: JSON.stringify({ key: plain[0].secret }),
    },
    {
      name: 'health/live',
      description: 'the API with no auth and no I/O',
      method: 'GET',
      path: '/health/live',
      ...fixed((status, body) => status === 200 && body === '{"status":"ok"}'),
    },
    {
      name: 'verify valid',
      description: `scope, resource, environment and source, rotating over ${scopedKeys.length} keys`,
      method: 'POST',
      path: '/v1/verify',
      token: verifier,
      ...verifyRequests(
        scopedKeys.map((key) => JSON.stringify(scopedBody(key.secret))),
        (answer, i) => answer.valid === true && answer.keyId === scopedKeys[i].id,
      ),
    },
    {
      name: 'verify unknown',
      description: `well-formed unknown key, rotating over ${unknownKeys.length}`,
      method: 'POST',
      path: '/v1/verify',
      token: verifier,
      ...verifyRequests(
        unknownKeys.map((key) => JSON.stringify({ key })),
        (answer) => answer.valid === false && answer.code === 'UNKNOWN',
      ),
    },
    {
      name: 'verify rate-limited',
      description: `a key with a rate limit (one Redis round trip), rotating over ${limited.length} keys`,
      method: 'POST',
      path: '/v1/verify',
      token: verifier,
      ...verifyRequests(
        limited.map((key) => JSON.stringify({ key: key.secret, scope: 'tickets:read' })),
        (answer, i) => answer.valid === true && answer.keyId === limited[i].id && answer.rateLimit !== null,
      ),
    },
    {
      name: 'gateway check',
      description: `GET with X-Api-Key, scope and resource in the query, rotating over ${scopedKeys.length} keys`,
      method: 'GET',
      path: gatewayPath,
      gatewayToken: verifier,
      ...gatewayRequests(),
    },
  ];

  const results: RunResult[] = [];
  // KEYWARD_BENCH_ONLY=name,name: only those runs (with the bare server), e.g. to profile one.
  const only = process.env.KEYWARD_BENCH_ONLY?.split(',');
  for (const run of runs.filter((r) => !only || r.name === 'bare fastify' || only.includes(r.name))) {
    const headers: Record<string, string> = { ...(run.method === 'POST' ? json : {}) };
    if (run.token) headers.authorization = `Bearer ${run.token}`;
    if (run.gatewayToken) headers['x-keyward-verifier'] = `Bearer ${run.gatewayToken}`;
    const result = await load(
      run.target === 'bare' ? bare.baseUrl : base,
      {
        title: run.name,
        method: run.method,
        path: run.path,
        headers,
        request: run.body === undefined ? run.request : { ...run.request, body: run.body },
      },
      SETTINGS,
    );
    results.push(summarise(run, result));
    const last = results[results.length - 1];
    console.log(
      `  ${run.name}: ${last.requestsPerSecond.mean} req/s, p99 ${last.latencyMs.p99} ms (${elapsed(startedAt)})`,
    );
  }
  const ceiling = results.find((r) => r.name === 'bare fastify')!.requestsPerSecond.mean;
  for (const result of results) {
    result.ratioToBare = ceiling > 0 ? round(result.requestsPerSecond.mean / ceiling, 2) : null;
  }

  await checkByHand('after');
  const loadAfter = os.loadavg();
  // Stopped here, not only in the clean-up, so that its last log lines are counted below.
  await api.stop();
  await bare.stop();

  // --- Report.
  console.log('');
  console.log(
    `node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? 'unknown'}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; ${SETTINGS.connections} connections, pipelining ` +
      `${SETTINGS.pipelining}, ${SETTINGS.warmupSeconds} s warm-up + ${SETTINGS.durationSeconds} s measured per run`,
  );
  console.log(
    `load average (1/5/15 min) before ${loadBefore.map((n) => n.toFixed(2)).join(' ')}, ` +
      `after ${loadAfter.map((n) => n.toFixed(2)).join(' ')}`,
  );
  console.log(report(results));
  const failedChecks = manual.filter((check) => !check.ok);
  console.log(
    `manual checks: ${manual.length - failedChecks.length}/${manual.length} as expected (before and after the load)`,
  );
  for (const check of failedChecks) {
    console.log(`  WRONG ${check.when}: ${check.name}: expected ${check.expected}, got ${check.got}`);
  }
  for (const result of results) {
    for (const s of result.answers.samples) console.log(`  wrong answer in ${result.name}: ${s}`);
  }
  const serverLog = snapshot(api.log);
  console.log(
    `server log during the bench: ${serverLog.warn} warn, ${serverLog.error} error, ${serverLog.other} other lines` +
      ' (none expected: a 4xx logs at warn, a 5xx at error)',
  );
  for (const line of serverLog.samples) console.log(`  server: ${line}`);

  const file = path.join(__dirname, 'results', 'verify.json');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(
    file,
    `${JSON.stringify(
      {
        when: new Date().toISOString(),
        node: process.version,
        machine: {
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model ?? null,
          totalMemBytes: os.totalmem(),
          platform: `${os.platform()} ${os.release()}`,
          loadAverageBefore: loadBefore,
          loadAverageAfter: loadAfter,
        },
        api: API_MODE,
        settings: {
          ...SETTINGS,
          plainKeys: plain.length,
          boundedKeys: bounded.length,
          limitedKeys: limited.length,
        },
        runs: results,
        manualChecks: manual,
        serverLog,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${path.relative(process.cwd(), file)} (${elapsed(startedAt)})`);

  const wrongAnswers = results.reduce((n, r) => n + r.answers.wrong, 0);
  return failedChecks.length === 0 && wrongAnswers === 0 ? 0 : 1;
}

function summarise(run: RunSpec, result: autocannon.Result): RunResult {
  return {
    name: run.name,
    description: run.description,
    request: `${run.method} ${run.path}`,
    authenticated: run.token !== undefined || run.gatewayToken !== undefined,
    requestsPerSecond: {
      mean: result.requests.mean,
      stddev: result.requests.stddev,
      min: result.requests.min,
      max: result.requests.max,
    },
    requestsTotal: result.requests.total,
    durationSeconds: result.duration,
    latencyMs: {
      mean: result.latency.mean,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      p99_9: result.latency.p99_9,
      max: result.latency.max,
    },
    non2xx: result.non2xx,
    statusCodes: Object.fromEntries(
      Object.entries(result.statusCodeStats).map(([code, stats]) => [code, stats.count]),
    ),
    errors: result.errors,
    timeouts: result.timeouts,
    ratioToBare: null,
    answers: { checked: run.tally.checked, wrong: run.tally.wrong, samples: run.tally.samples },
  };
}

function report(results: RunResult[]): string {
  return table(
    [
      { title: 'run' },
      { title: 'request' },
      { title: 'req/s', right: true },
      { title: 'p50 ms', right: true },
      { title: 'p99 ms', right: true },
      { title: 'non-2xx', right: true },
      { title: 'errors', right: true },
      { title: 'vs bare fastify', right: true },
      { title: 'answers wrong/checked', right: true },
    ],
    results.map((r) => [
      r.name,
      r.request,
      r.requestsPerSecond.mean.toFixed(0),
      String(r.latencyMs.p50),
      String(r.latencyMs.p99),
      String(r.non2xx),
      r.timeouts > 0 ? `${r.errors} (${r.timeouts} timeouts)` : String(r.errors),
      r.ratioToBare === null ? '-' : `${r.ratioToBare.toFixed(2)}x`,
      `${r.answers.wrong}/${r.answers.checked}`,
    ]),
  );
}

/** What a verify with every optional check sends: scope, resource, environment and source. */
function scopedBody(key: string): Record<string, unknown> {
  return {
    key,
    scope: 'tickets:read',
    resource: RESOURCE,
    environment: 'production',
    source: { ip: '10.20.1.7' },
  };
}

/** The same key id with another secret and a valid checksum: only the hash comparison can refuse it. */
function otherSecret(secret: string): string {
  const body = secret.slice(0, -6);
  const at = body.length - 1;
  const changed = `${body.slice(0, at)}${body[at] === 'A' ? 'B' : 'A'}`;
  return `${changed}${checkOf(changed)}`;
}

function snapshot(log: ServerLog): ServerLog {
  return { ...log, samples: [...log.samples] };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
