import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { decideCreate } from '@keyward/accounts';
import { createDb, ensureDatabase, migrateToLatest, type Db } from '@keyward/db';
import type { EventMetadata, EventStore } from '@keyward/event-store';
import { decideCreateTenant, TENANT_STREAM, tenantStreamId } from '@keyward/tenants';
import { closeRedis, createRedis } from '@keyward/redis';
import { migrations } from '../migrations';
import type { ApiServerMessage } from './api-server';

/** Shared by every benchmark: the database, Redis, the API process, HTTP calls, load runs and output. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects when `promise` has not settled within `ms`, naming what took too long. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Undo steps, run last registered first, each at most once and each bounded in time, whether the
 * benchmark ends, fails or overruns its deadline (bench/main.ts runs them then).
 */
export class Cleanup {
  private readonly steps: { what: string; run: () => Promise<unknown> }[] = [];

  add(what: string, run: () => Promise<unknown>): void {
    this.steps.push({ what, run });
  }

  async run(timeoutMs = 15_000): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await within(timeoutMs, `cleanup: ${step.what}`, step.run());
      } catch (error) {
        console.error(`cleanup: ${step.what} failed: ${error instanceof Error ? error.message : error}`);
      }
    }
  }
}

export const cleanup = new Cleanup();

// --- PostgreSQL -------------------------------------------------------------------------------

/** The server of DATABASE_URL (or the service's default), with another database name. */
export function databaseUrlNamed(name: string): string {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/keyward');
  url.pathname = `/${name}`;
  return url.toString();
}

function databaseName(databaseUrl: string): string {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]{1,63}$/.test(name)) throw new Error(`database name "${name}" is not allowed`);
  return name;
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = databaseName(databaseUrl);
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}

/** Drops the database if it is there, creates it and migrates it to the latest schema. */
export async function freshDatabase(databaseUrl: string): Promise<void> {
  await dropDatabase(databaseUrl);
  await ensureDatabase(databaseUrl);
  const db = createDb(databaseUrl, { max: 2, applicationName: 'keyward-bench' });
  try {
    await migrateToLatest(db, migrations);
  } finally {
    await db.destroy();
  }
}

// --- Redis ------------------------------------------------------------------------------------

/** Deletes every key under `<prefix>:` (the service's keys and BullMQ's); answers how many. */
export async function deleteRedisKeys(redisUrl: string, prefix: string): Promise<number> {
  const redis = createRedis(redisUrl);
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await closeRedis(redis);
  }
  return deleted;
}

// --- The API process --------------------------------------------------------------------------

export interface ServerLog {
  /** Log lines at warn (pino level 40): a 4xx answer, among others. */
  warn: number;
  /** Log lines at error or fatal (50+): a 5xx answer, among others. */
  error: number;
  /** Anything else the process wrote, stderr included. */
  other: number;
  /** The first few warn, error and other lines, cut short. */
  samples: string[];
}

export interface ApiProcess {
  baseUrl: string;
  pid: number;
  log: ServerLog;
  /** Asks the API to close (pools, Redis) and waits for it to exit; kills it if it does not. */
  stop(): Promise<void>;
}

const MAX_LOG_SAMPLES = 8;

/**
 * Starts bench/api-server.ts in a child process with `env` (read there by loadConfig), so that
 * autocannon, in this process, does not share the API's event loop. Its log lines are counted by level.
 */
export function startApiProcess(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ApiProcess> {
  return startServerProcess('api-server.ts', env, timeoutMs);
}

/** A server of bench/ (api-server.ts, bare-server.ts) in a child process of its own. */
export async function startServerProcess(
  script: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<ApiProcess> {
  const root = path.resolve(__dirname, '..');
  // KEYWARD_BENCH_CPU_PROFILE=<dir>: each server writes a V8 CPU profile there when it stops.
  const profile = process.env.KEYWARD_BENCH_CPU_PROFILE;
  const child = spawn(
    process.execPath,
    [
      ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []),
      '-r',
      'ts-node/register/transpile-only',
      '-r',
      'tsconfig-paths/register',
      path.join(__dirname, script),
    ],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  const log: ServerLog = { warn: 0, error: 0, other: 0, samples: [] };
  const sample = (line: string) => {
    if (log.samples.length < MAX_LOG_SAMPLES) log.samples.push(line.slice(0, 600));
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let level = 0;
    try {
      level = Number((JSON.parse(line) as { level?: number }).level ?? 0);
    } catch {
      // not a pino line
    }
    if (level >= 50) log.error += 1;
    else if (level >= 40) log.warn += 1;
    else log.other += 1;
    sample(line);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.other += 1;
    sample(line);
  });
  const exited = once(child, 'exit');
  // Lines still in the pipes when the process exits are counted before stop() answers.
  const drained = Promise.all([once(child.stdout!, 'close'), once(child.stderr!, 'close')]);

  try {
    const port = await within(
      timeoutMs,
      'starting the API',
      new Promise<number>((resolve, reject) => {
        child.on('message', (message: ApiServerMessage) => {
          if (message.type === 'listening') resolve(message.port);
          if (message.type === 'failed') reject(new Error(`the API failed: ${message.error}`));
        });
        child.once('exit', (code, signal) =>
          reject(new Error(`the API exited (${code ?? signal}) before listening: ${log.samples.join('\n')}`)),
        );
      }),
    );
    return {
      baseUrl: `http://127.0.0.1:${port}`,
      pid: child.pid!,
      log,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          if (child.connected) child.send({ type: 'close' });
          const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
          if (!done) {
            child.kill('SIGKILL');
            await exited;
            throw new Error('the API did not close within 10 s; killed it');
          }
        }
        await Promise.race([drained, sleep(2_000)]);
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

// --- HTTP -------------------------------------------------------------------------------------

export interface HttpAnswer {
  status: number;
  body: unknown;
}

export async function call(
  baseUrl: string,
  method: string,
  urlPath: string,
  options: { token?: string; body?: unknown } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // left as text
  }
  return { status: res.status, body };
}

/** `call`, failing unless it answers `status`; answers the body. */
export async function expectCall<T>(
  status: number,
  baseUrl: string,
  method: string,
  urlPath: string,
  options: { token?: string; body?: unknown } = {},
): Promise<T> {
  const answer = await call(baseUrl, method, urlPath, options);
  if (answer.status !== status) {
    throw new Error(
      `${method} ${urlPath} answered ${answer.status}, expected ${status}: ${JSON.stringify(answer.body).slice(0, 500)}`,
    );
  }
  return answer.body as T;
}

/** Runs `task` over `items` with at most `concurrency` at a time; answers in the items' order. */
export async function mapLimit<T, R>(
  items: T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

// --- Load -------------------------------------------------------------------------------------

export interface LoadSettings {
  connections: number;
  pipelining: number;
  warmupSeconds: number;
  durationSeconds: number;
}

/** Counts answers a load run checked, and keeps the first few wrong ones. */
export class AnswerTally {
  checked = 0;
  wrong = 0;
  readonly samples: string[] = [];

  record(ok: boolean, detail: () => string): void {
    this.checked += 1;
    if (ok) return;
    this.wrong += 1;
    if (this.samples.length < 5) this.samples.push(detail().slice(0, 400));
  }
}

/**
 * One load run: a warm-up of the same requests (not measured), then the measured run. Every
 * request of both goes through `request`'s onResponse, so the tally covers all of them.
 */
export async function load(
  baseUrl: string,
  spec: {
    title: string;
    method: string;
    path: string;
    headers: Record<string, string>;
    request: autocannon.Request;
  },
  settings: LoadSettings,
): Promise<autocannon.Result> {
  const options: autocannon.Options = {
    url: `${baseUrl}${spec.path}`,
    title: spec.title,
    method: spec.method,
    headers: spec.headers,
    connections: settings.connections,
    pipelining: settings.pipelining,
    timeout: 10,
    requests: [spec.request],
  };
  const seconds = settings.warmupSeconds + settings.durationSeconds;
  return within((seconds + 20) * 1000, `load run "${spec.title}"`, runOnce(options, settings));
}

async function runOnce(options: autocannon.Options, settings: LoadSettings): Promise<autocannon.Result> {
  await autocannon({ ...options, duration: settings.warmupSeconds });
  return autocannon({ ...options, duration: settings.durationSeconds });
}

// --- Output -----------------------------------------------------------------------------------

/** A plain text table; columns whose `right` is set are aligned right. */
export function table(columns: { title: string; right?: boolean }[], rows: string[][]): string {
  const widths = columns.map((column, i) =>
    Math.max(column.title.length, ...rows.map((row) => row[i].length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (columns[i].right ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [
    line(columns.map((column) => column.title)),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
  ].join('\n');
}

// --- Event fixtures (benchmarks that write through the event store, not the API) ----------------

/** Who a benchmark's own events are by. */
export const BENCH_METADATA: EventMetadata = {
  actor: { type: 'system', id: 'bench', name: 'bench' },
  reason: null,
  correlationId: 'bench',
};

/** A database for a benchmark that appends through the event store: fresh, migrated, dropped at the end. */
export async function benchDatabase(name: string): Promise<Db> {
  const databaseUrl = databaseUrlNamed(name);
  cleanup.add(`drop database ${name}`, () => dropDatabase(databaseUrl));
  await freshDatabase(databaseUrl);
  const db = createDb(databaseUrl, { max: 4, applicationName: 'keyward-bench' });
  cleanup.add('close the pool', () => db.destroy());
  return db;
}

/** The tenant, created as the tenants aggregate decides. */
export async function seedTenant(store: EventStore, tenantId: string): Promise<void> {
  await store.append(
    [
      {
        tenantId,
        streamId: tenantStreamId(tenantId),
        streamType: TENANT_STREAM,
        expectedVersion: 0,
        events: decideCreateTenant(false, tenantId, 'Bench'),
      },
    ],
    BENCH_METADATA,
  );
}

/** A production account's creation, as the accounts aggregate decides it. */
export function benchAccountCreated(id: string, tenantId: string, name: string, allowedScopes: string[]) {
  return decideCreate({
    id,
    tenantId,
    name,
    environment: 'production',
    description: null,
    intendedScope: null,
    businessOwner: 'bench-owner',
    technicalOwner: 'bench-team',
    allowedScopes,
    boundaries: [],
    allowedCidrs: [],
    abuseDetection: true,
    rotationPolicy: null,
    secretDelivery: null,
  });
}

export async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = process.hrtime.bigint();
  const result = await run();
  return { result, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Seconds since `since`, for progress lines. */
export function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}
