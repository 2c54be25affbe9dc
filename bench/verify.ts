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
  table,
  type LoadSettings,
  type ServerLog,
  round,
  elapsed,
} from './support';

/**
 * DESIGN.md "The verify path" is held to a benchmark: POST /v1/verify against an authenticated
 * baseline, on a fresh database, through the real HTTP API running in its own process.
 */

const DATABASE = 'keyward_bench';
const REDIS_PREFIX = 'kwbench';
const TENANT = 'bench';
const PLAIN_KEYS = 200;
const BOUNDED_KEYS = 10;
const ACCOUNT_BOUNDARY = 'site:plant-7';
const RESOURCE = 'site:plant-7/asset:P-101';
const SETTINGS: LoadSettings = { connections: 50, pipelining: 1, warmupSeconds: 2, durationSeconds: 10 };
const API_MODE =
  'child process: bench/api-server.ts (createApi of apps/api/src/app.ts under ts-node --transpile-only), ' +
  'NODE_ENV=production, LOG_LEVEL=warn; autocannon in the parent process; no worker process';

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
  method: 'GET' | 'POST';
  path: string;
  token?: string;
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
  ratioToAuthBaseline: number | null;
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
    LOG_LEVEL: 'warn',
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
  const unknownKeys = range(PLAIN_KEYS).map(() => issueKeySecret(newId(ID_PREFIX.key), 'production').secret);
  console.log(
    `fixture: tenant ${TENANT}, account ${account.id}, ${plain.length} keys + ${bounded.length} bounded + 1 ` +
      `out of the resource's boundary, ${unknownKeys.length} unknown well-formed keys (${elapsed(startedAt)})`,
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
  const runs: RunSpec[] = [
    {
      name: 'health/live',
      description: 'reference: unauthenticated, no I/O',
      method: 'GET',
      path: '/health/live',
      ...fixed((status, body) => status === 200 && body === '{"status":"ok"}'),
    },
    {
      name: 'auth baseline',
      description: 'GET /v1/policy as admin: authenticated, one small read',
      method: 'GET',
      path: '/v1/policy',
      token: admin,
      ...fixed((status, body) => status === 200 && body.includes('"maxActiveKeys":1000')),
    },
    {
      name: 'verify valid',
      description: `valid key, rotating over ${plain.length} keys`,
      method: 'POST',
      path: '/v1/verify',
      token: verifier,
      ...verifyRequests(
        plain.map((key) => JSON.stringify({ key: key.secret })),
        (answer, i) => answer.valid === true && answer.keyId === plain[i].id,
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
      name: 'verify scope+resource',
      description: `scope, resource, environment and source ip, rotating over ${scopedKeys.length} keys`,
      method: 'POST',
      path: '/v1/verify',
      token: verifier,
      ...verifyRequests(
        scopedKeys.map((key) => JSON.stringify(scopedBody(key.secret))),
        (answer, i) => answer.valid === true && answer.keyId === scopedKeys[i].id,
      ),
    },
  ];

  const results: RunResult[] = [];
  for (const run of runs) {
    const headers: Record<string, string> = { ...(run.method === 'POST' ? json : {}) };
    if (run.token) headers.authorization = `Bearer ${run.token}`;
    const result = await load(
      base,
      { title: run.name, method: run.method, path: run.path, headers, request: run.request },
      SETTINGS,
    );
    results.push(summarise(run, result));
    const last = results[results.length - 1];
    console.log(
      `  ${run.name}: ${last.requestsPerSecond.mean} req/s, p99 ${last.latencyMs.p99} ms (${elapsed(startedAt)})`,
    );
  }
  const baseline = results.find((r) => r.name === 'auth baseline')!.requestsPerSecond.mean;
  for (const result of results) {
    result.ratioToAuthBaseline = baseline > 0 ? round(result.requestsPerSecond.mean / baseline, 2) : null;
  }

  await checkByHand('after');
  const loadAfter = os.loadavg();
  // Stopped here, not only in the clean-up, so that its last log lines are counted below.
  await api.stop();

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
        settings: { ...SETTINGS, plainKeys: plain.length, boundedKeys: bounded.length },
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
    authenticated: run.token !== undefined,
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
    ratioToAuthBaseline: null,
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
      { title: 'vs auth baseline', right: true },
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
      r.ratioToAuthBaseline === null ? '-' : `${r.ratioToAuthBaseline.toFixed(2)}x`,
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
