import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Queue, Worker, type Job } from 'bullmq';
import { sql } from 'kysely';
import pino from 'pino';
import type { KeywardConfig } from '@keyward/config';
import { DEFAULT_JOB_OPTIONS, JOB, QUEUES } from '@keyward/jobs';
import type { ExpirySweepResult } from '@keyward/keys';
import { closeRedis, createRedis, producerConnection, workerConnection } from '@keyward/redis';
import { bearer, createTenant, startTestApi, type TestApi } from '../../../test/support/api';
import { testRedisPrefix } from '../../../test/support/database';
import { TEST_REDIS_URL } from '../../../test/support/env';
import { startWorker, type KeywardWorker } from './worker';
import { waitFor } from '../../../test/support/wait';

/**
 * How scheduled and hand-added jobs behave with several workers, a retry, a kill and a drain
 * (DESIGN.md "Workers"). Real BullMQ workers on real Redis and PostgreSQL; key expiry is moved by
 * the test's clock, never waited for. What must be slow (a sweep in the middle of its work) is
 * made to wait on a PostgreSQL lock the test holds, not by sleeping. Each test has a Redis prefix
 * of its own (its queues, schedulers and locks) and removes it after.
 */
let api: TestApi;
const redis = createRedis(TEST_REDIS_URL);
const logger = pino({ level: 'silent' });
const ROOT = resolve(__dirname, '../../..');
const DAY = 24 * 3600 * 1000;
const EVERY_SECOND = '* * * * * *';
/** New Year's midnight: no such run while a test lasts, so only the test's own jobs run. */
const NEVER = '0 0 0 1 1 *';
// A child process costs a couple of seconds to start; the machine may be busy.
jest.setTimeout(45_000);

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
  await closeRedis(redis);
});

function workerConfig(prefix: string, sweepCron: string): KeywardConfig {
  return { ...api.config, redisPrefix: prefix, sweepCron, usageFlushCron: NEVER };
}

function sweepsWorker(worker: KeywardWorker): Worker {
  const found = worker.workers.find((w) => w.name === QUEUES.sweeps);
  if (!found) throw new Error('no sweeps worker');
  return found;
}

function sweepsQueue(prefix: string): Queue {
  return new Queue(QUEUES.sweeps, { connection: producerConnection(TEST_REDIS_URL), prefix });
}

/** Removes every Redis key of a test's prefix (queues, schedulers, locks). */
async function dropPrefix(prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

let seq = 0;
/** A tenant, an account and `count` keys that expire in a day (by the test's clock). */
async function keysExpiringTomorrow(count: number): Promise<string[]> {
  seq += 1;
  const t = await createTenant(api, `sched-${seq}`);
  const admin = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: `acct-${seq}`,
      environment: 'staging',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
    })
    .expect(201);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = await api.http
      .post(`/v1/service-accounts/${account.body.id}/keys`)
      .set(admin)
      .send({ name: `k${i}`, scopes: ['a:read'], expiresInDays: 1 })
      .expect(201);
    ids.push(key.body.id as string);
  }
  return ids;
}

/** KeyExpired events of each key, in order. */
async function expiredCounts(keyIds: string[]): Promise<number[]> {
  const rows = await api.database.db
    .selectFrom('events')
    .select(['stream_id', sql<string>`count(*)`.as('n')])
    .where('stream_id', 'in', keyIds)
    .where('type', '=', 'KeyExpired')
    .groupBy('stream_id')
    .execute();
  const counts = new Map(rows.map((r) => [r.stream_id, Number(r.n)]));
  return keyIds.map((id) => counts.get(id) ?? 0);
}

/**
 * Holds `keys` in share row exclusive mode, as verify.e2e.spec.ts's holdKeysTable does (there in
 * access exclusive mode): reads go on, so a sweep finds its keys, claims their streams and then
 * waits, in the middle of its transaction, to update the keys read model. Answers the release.
 */
async function holdKeysTable(): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((done) => (release = done));
  let finished!: Promise<void>;
  await new Promise<void>((lockTaken, fail) => {
    finished = api.database.db
      .transaction()
      .execute(async (trx) => {
        await sql`lock table keys in share row exclusive mode`.execute(trx);
        lockTaken();
        await released;
      })
      .catch(fail);
  });
  return async () => {
    release();
    await finished;
  };
}

/** PostgreSQL sessions of workers (startWorker's pool) in this file's database. */
async function workerSessions(): Promise<{ waitingOnLock: number; all: number }> {
  const { rows } = await sql<{ waiting: number; all: number }>`
    select count(*) filter (where wait_event_type = 'Lock')::int as waiting, count(*)::int as all
    from pg_stat_activity
    where datname = current_database() and application_name = 'keyward-worker'`.execute(api.database.db);
  return { waitingOnLock: rows[0].waiting, all: rows[0].all };
}

async function sweepsWaitingOnLock(count: number): Promise<true> {
  return waitFor(`${count} sweep(s) waiting on the keys table`, async () => {
    const { waitingOnLock } = await workerSessions();
    if (waitingOnLock > count) throw new Error(`${waitingOnLock} sessions wait, expected ${count}`);
    return waitingOnLock === count;
  });
}

interface ChildWorker {
  process: ChildProcess;
  output(): string;
  /** Sends the signal (unless it has ended) and resolves with how the process ended. */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * A worker in a process of its own (test/support/worker-process.ts through ts-node, as the CLI's
 * tests run the CLI), on this file's database, at the test clock's current time.
 */
function spawnWorker(prefix: string): Promise<ChildWorker> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      '-r',
      'tsconfig-paths/register',
      'test/support/worker-process.ts',
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        DATABASE_URL: api.config.databaseUrl,
        REDIS_URL: TEST_REDIS_URL,
        KEYWARD_REDIS_PREFIX: prefix,
        KEYWARD_SWEEP_CRON: NEVER,
        KEYWARD_USAGE_FLUSH_CRON: NEVER,
        KEYWARD_TEST_NOW: api.clock.now().toISOString(),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })),
  );
  const worker: ChildWorker = {
    process: child,
    output: () => output,
    stop: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return new Promise((ready, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`worker process not ready within 20 s\n${output}`));
    }, 20_000);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (/^ready$/m.test(output)) {
        clearTimeout(timer);
        ready(worker);
      }
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.on('error', fail);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`worker process ended before ready (${code ?? signal})\n${output}`));
    });
  });
}

it('two workers on one Redis run each scheduled sweep once, and both take runs', async () => {
  const keyIds = await keysExpiringTomorrow(3);
  api.clock.advance(DAY + 1);
  const prefix = testRedisPrefix();
  const queue = sweepsQueue(prefix);
  const config = workerConfig(prefix, EVERY_SECOND);
  /** Every time a worker took a job (retries and re-runs included): which job, which worker. */
  const taken: { jobId: string; worker: number }[] = [];
  const workers: KeywardWorker[] = [];
  const scheduledRuns = async () =>
    (await queue.getJobs(['completed'])).filter((job) => job.repeatJobKey === 'expiry-sweep');
  const started = Date.now();
  try {
    // The first run is held inside its sweep (keys table locked), so its worker is busy
    // (concurrency 1) and the next second's run can only go to the other: both take runs, by
    // construction rather than by luck of the draw.
    const release = await holdKeysTable();
    try {
      // Both declare the schedule at start, as two worker processes do.
      for (const n of [1, 2]) {
        const worker = await startWorker(config, logger, { clock: api.clock });
        workers.push(worker);
        sweepsWorker(worker).on('active', (job: Job) => taken.push({ jobId: job.id!, worker: n }));
      }
      await sweepsWaitingOnLock(2);
      expect(new Set(taken.map((t) => t.worker))).toEqual(new Set([1, 2]));
    } finally {
      await release();
    }
    await waitFor('four completed scheduled runs', async () => (await scheduledRuns()).length >= 4, 15_000);
  } finally {
    // Drains: a run in progress completes before close resolves.
    await Promise.all(workers.map((w) => w.close()));
  }
  const elapsed = Date.now() - started;

  try {
    const runs = await scheduledRuns();
    const ids = runs.map((job) => job.id!);
    const stamps = ids.map((id) => Number(/^repeat:expiry-sweep:(\d+)$/.exec(id)?.[1]));
    expect(stamps.every((ms) => Number.isInteger(ms) && ms % 1000 === 0)).toBe(true);
    // No scheduled time was enqueued twice, and no run was taken twice, by one worker or two.
    expect(new Set(stamps).size).toBe(stamps.length);
    // (The hygiene sweep and the delivery re-queue share the queue and the cron; this is about
    // the expiry sweep's runs.)
    const expiryRuns = taken.filter((t) => t.jobId.startsWith('repeat:expiry-sweep:'));
    expect(expiryRuns.map((t) => t.jobId).sort()).toEqual([...ids].sort());
    expect(await queue.getJobs(['failed', 'active', 'waiting'])).toEqual([]);
    // The two held runs raced for the same keys: one wrote, the other met the versions it read
    // moved and wrote nothing; later runs found nothing to do.
    const results = runs.map((job) => job.returnvalue as ExpirySweepResult);
    expect(results.reduce((n, r) => n + r.expired, 0)).toBe(keyIds.length);
    expect(await expiredCounts(keyIds)).toEqual(keyIds.map(() => 1));
    expect(elapsed).toBeLessThan(20_000);
  } finally {
    await queue.close();
    await dropPrefix(prefix);
  }
});

it('a sweep run twice, at once by two workers and again later, expires each key once', async () => {
  const keyIds = await keysExpiringTomorrow(4);
  api.clock.advance(DAY + 1);
  const prefix = testRedisPrefix();
  const queue = sweepsQueue(prefix);
  const config = workerConfig(prefix, NEVER);
  const workers: KeywardWorker[] = [];
  try {
    for (let n = 0; n < 2; n++) workers.push(await startWorker(config, logger, { clock: api.clock }));
    // The same job twice (same name, same data), held until both are inside their transaction,
    // then let go together: one commits, the other meets versions that moved and writes nothing.
    const release = await holdKeysTable();
    try {
      await queue.add(JOB.expireKeys, {}, { ...DEFAULT_JOB_OPTIONS, jobId: 'twice-a' });
      await queue.add(JOB.expireKeys, {}, { ...DEFAULT_JOB_OPTIONS, jobId: 'twice-b' });
      await sweepsWaitingOnLock(2);
      expect(await queue.getJobState('twice-a')).toBe('active');
      expect(await queue.getJobState('twice-b')).toBe('active');
    } finally {
      await release();
    }
    const [a, b] = await waitFor('both runs to complete', async () => {
      const jobs = await Promise.all([queue.getJob('twice-a'), queue.getJob('twice-b')]);
      return jobs.every((job) => job?.finishedOn) && (jobs as Job[]);
    });
    expect(a.failedReason).toBeUndefined();
    expect(b.failedReason).toBeUndefined();
    const results = [a.returnvalue, b.returnvalue] as ExpirySweepResult[];
    expect(results.map((r) => r.expired).sort()).toEqual([0, keyIds.length]);
    expect(await expiredCounts(keyIds)).toEqual(keyIds.map(() => 1));

    // The very same job (same id) once more, as a retry would run it: nothing left to write.
    await a.retry('completed');
    const again = await waitFor('the re-run to complete', async () => {
      const job = await queue.getJob('twice-a');
      return job && job.finishedOn! > a.finishedOn! && job;
    });
    expect(again.returnvalue).toEqual({ expired: 0, retries: 0 });
    expect(await expiredCounts(keyIds)).toEqual(keyIds.map(() => 1));
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await queue.close();
    await dropPrefix(prefix);
  }
});

it('a worker process killed mid-sweep commits nothing; the job is retried and expires each key once', async () => {
  const keyIds = await keysExpiringTomorrow(3);
  api.clock.advance(DAY + 1);
  const prefix = testRedisPrefix();
  const queue = sweepsQueue(prefix);
  const jobId = 'killed-mid-sweep';
  const child = await spawnWorker(prefix);
  let fresh: KeywardWorker | undefined;
  let checker: Worker | undefined;
  const checkerConnection = workerConnection(TEST_REDIS_URL);
  try {
    const release = await holdKeysTable();
    try {
      await queue.add(JOB.expireKeys, {}, { ...DEFAULT_JOB_OPTIONS, jobId });
      // The child took the job and is inside the sweep's transaction, its key streams claimed.
      await sweepsWaitingOnLock(1);
      expect(await queue.getJobState(jobId)).toBe('active');
      expect(await child.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    } finally {
      await release();
    }
    // Its PostgreSQL session finds its client gone and ends: the open transaction rolls back.
    await waitFor('the killed worker’s sessions to end', async () => (await workerSessions()).all === 0);
    expect(await expiredCounts(keyIds)).toEqual(keyIds.map(() => 0));
    // In Redis the job is still active, under a lock nobody renews any more.
    expect(await queue.getJobState(jobId)).toBe('active');
    const lockKey = `${prefix}:${QUEUES.sweeps}:${jobId}:lock`;
    expect(await redis.pttl(lockKey)).toBeGreaterThan(0);

    // The lock lapses after lockDuration (30 s) and stalled checks run every stalledInterval
    // (30 s). Time moved, not waited for: the lock and the last check's throttle key expire now,
    // and a stalled checker (the same code every worker runs) checks twice, 100 ms apart: the
    // first marks the active job, the second finds it unlocked and puts it back to wait.
    await redis.del(lockKey, `${prefix}:${QUEUES.sweeps}:stalled-check`);
    const stalled: string[] = [];
    checker = new Worker(QUEUES.sweeps, undefined, {
      connection: checkerConnection,
      prefix,
      autorun: false,
      stalledInterval: 100,
    });
    checker.on('stalled', (id) => stalled.push(id));
    await checker.waitUntilReady();
    await checker.startStalledCheckTimer();
    await waitFor('the stalled job back in wait', async () => stalled.includes(jobId));
    expect(await queue.getJobState(jobId)).toBe('waiting');
    await checker.close();
    checker = undefined;

    // A fresh worker runs it from the start, and writes what the killed one never committed.
    fresh = await startWorker(workerConfig(prefix, NEVER), logger, { clock: api.clock });
    const done = await waitFor('the retried job to complete', async () => {
      const job = await queue.getJob(jobId);
      return job?.finishedOn !== undefined && job;
    });
    expect(await queue.getJobState(jobId)).toBe('completed');
    expect(done.stalledCounter).toBe(1);
    expect(done.returnvalue).toEqual({ expired: keyIds.length, retries: 0 });
    expect(await expiredCounts(keyIds)).toEqual(keyIds.map(() => 1));
  } finally {
    await child.stop('SIGKILL');
    await checker?.close();
    await closeRedis(checkerConnection);
    await fresh?.close();
    await queue.close();
    await dropPrefix(prefix);
  }
});

it('close (what SIGTERM runs) resolves only after the running sweep completed, and starts no other', async () => {
  const keyIds = await keysExpiringTomorrow(3);
  api.clock.advance(DAY + 1);
  const prefix = testRedisPrefix();
  const queue = sweepsQueue(prefix);
  const worker = await startWorker(workerConfig(prefix, NEVER), logger, { clock: api.clock });
  let closing: Promise<void> | undefined;
  let closedAt: number | undefined;
  try {
    const release = await holdKeysTable();
    try {
      await queue.add(JOB.expireKeys, {}, { ...DEFAULT_JOB_OPTIONS, jobId: 'drained' });
      await sweepsWaitingOnLock(1);
      // Queued behind it (concurrency 1): a draining worker must not start it.
      await queue.add(JOB.expireKeys, {}, { ...DEFAULT_JOB_OPTIONS, jobId: 'after-close' });
      closing = worker.close().then(() => {
        closedAt = Date.now();
      });
      // While the sweep is held, close stays pending and the job stays active: nothing cut off.
      // (Waiting for something not to happen needs some time; half a second, bounded.)
      await new Promise((done) => setTimeout(done, 500));
      expect(closedAt).toBeUndefined();
      expect(await queue.getJobState('drained')).toBe('active');
      expect(await expiredCounts(keyIds)).toEqual(keyIds.map(() => 0));
    } finally {
      await release();
    }
    await closing;
    const drained = (await queue.getJob('drained'))!;
    expect(await queue.getJobState('drained')).toBe('completed');
    expect(drained.returnvalue).toEqual({ expired: keyIds.length, retries: 0 });
    expect(drained.finishedOn!).toBeLessThanOrEqual(closedAt!);
    expect(await expiredCounts(keyIds)).toEqual(keyIds.map(() => 1));
    expect(await queue.getJobState('after-close')).toBe('waiting');
    // Its pool is closed too: no session of the worker is left.
    expect((await workerSessions()).all).toBe(0);
  } finally {
    await (closing ?? worker.close());
    await queue.close();
    await dropPrefix(prefix);
  }
});
