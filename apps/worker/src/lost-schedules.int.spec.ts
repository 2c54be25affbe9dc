import { PassThrough } from 'node:stream';
import { Queue, type Job } from 'bullmq';
import { sql } from 'kysely';
import pino from 'pino';
import type { KeywardConfig } from '@keyward/config';
import { QUEUES, readScheduleHeartbeat, scheduleHeartbeatKey, scheduleSpecs } from '@keyward/jobs';
import { closeRedis, createRedis, producerConnection } from '@keyward/redis';
import { startTestApi, type TestApi } from '../../../test/support/api';
import { TEST_REDIS_URL } from '../../../test/support/env';
import { waitFor } from '../../../test/support/wait';
import { startWorker, type KeywardWorker } from './worker';

/**
 * A Redis that comes back without its data has no job schedulers: the worker must notice (when
 * its connection comes back, and by its periodic check) and declare them again, and the API's
 * readiness must say when schedules are missing or not running. The shared Redis server cannot be
 * restarted, so "came back empty" is every key of this file's prefix deleted in one script, and
 * the restart's dropped connections are the connections named for the prefix, killed in the same
 * MULTI. Real worker, real API, real Redis and PostgreSQL; schedules every second, so runs are seen
 * in seconds.
 */
let api: TestApi;
const redis = createRedis(TEST_REDIS_URL);
const EVERY_SECOND = '* * * * * *';
const SCHEDULE_IDS = scheduleSpecs({
  usageFlushCron: EVERY_SECOND,
  sweepCron: EVERY_SECOND,
  abuseCron: EVERY_SECOND,
}).map((spec) => spec.id);
const SCHEDULED_QUEUES = [QUEUES.usage, QUEUES.sweeps, QUEUES.signals];
jest.setTimeout(45_000);

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
  await closeRedis(redis);
});

function prefix(): string {
  return api.config.redisPrefix;
}

/** Every key of this file's prefix, deleted in one step, as a Redis restarted without data has none. */
const WIPE = `
local deleted = 0
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    redis.call('DEL', key)
    deleted = deleted + 1
  end
until cursor == '0'
return deleted`;

/** Ids and names of the connections named for this file's prefix: the worker's, and the API's subscriber. */
async function prefixConnections(): Promise<{ id: string; name: string }[]> {
  const list = (await redis.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
  return list
    .split('\n')
    .map((line) => ({ id: /\bid=(\d+)/.exec(line)?.[1], name: /\bname=(\S*)/.exec(line)?.[1] ?? '' }))
    .filter((c): c is { id: string; name: string } => !!c.id && c.name.startsWith(`${prefix()}:`));
}

/**
 * Deletes every key of the prefix and, with `dropConnections`, kills the prefix's connections in
 * the same MULTI: nothing of the worker's lands between the loss of the data and the loss of the
 * connections. Answers how many keys and connections went, and when (ms).
 */
async function redisComesBackEmpty(dropConnections: boolean) {
  const connections = dropConnections ? await prefixConnections() : [];
  const multi = redis.multi().eval(WIPE, 0, `${prefix()}:*`);
  for (const { id } of connections) multi.call('CLIENT', 'KILL', 'ID', id);
  const results = (await multi.exec())!;
  for (const [error] of results) if (error) throw error;
  return { keys: results[0][1] as number, connections, at: Date.now() };
}

function workerConfig(): KeywardConfig {
  return { ...api.config, usageFlushCron: EVERY_SECOND, sweepCron: EVERY_SECOND, abuseCron: EVERY_SECOND };
}

interface Running {
  worker: KeywardWorker;
  /**
   * When the last completed run of each schedule was due (ms, from its job id
   * `repeat:<schedule>:<due ms>`), as the worker's own BullMQ workers saw it complete: a run taken
   * before a loss and finished after it does not count as one after.
   */
  lastRun: Map<string, number>;
  logs(): { msg: string; reason?: string; schedules?: string[]; problems?: string[] }[];
}

async function run(scheduleCheckMs: number): Promise<Running> {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const logger = pino({ level: 'info' }, stream);
  const worker = await startWorker(workerConfig(), logger, { clock: api.clock, scheduleCheckMs });
  const lastRun = new Map<string, number>();
  for (const w of worker.workers) {
    w.on('completed', (job: Job) => {
      const due = Number(/^repeat:.+:(\d+)$/.exec(job.id ?? '')?.[1]);
      if (job.repeatJobKey && due > (lastRun.get(job.repeatJobKey) ?? 0)) lastRun.set(job.repeatJobKey, due);
    });
  }
  return { worker, lastRun, logs: () => lines.map((line) => JSON.parse(line)) };
}

/** Resolves once every schedule has completed a run that was due after `since` (ms). */
function everyScheduleRanAfter(running: Running, since: number, timeoutMs = 10_000): Promise<true> {
  return waitFor(
    'every schedule to complete a run due after the loss',
    async () => SCHEDULE_IDS.every((id) => (running.lastRun.get(id) ?? 0) > since),
    timeoutMs,
  );
}

/** The schedulers Redis holds for this prefix, read as any client would, through BullMQ. */
async function declaredSchedules(): Promise<string[]> {
  const found: string[] = [];
  for (const name of SCHEDULED_QUEUES) {
    const queue = new Queue(name, { connection: producerConnection(TEST_REDIS_URL), prefix: prefix() });
    try {
      for (const scheduler of await queue.getJobSchedulers()) found.push(scheduler.key);
    } finally {
      await queue.close();
    }
  }
  return found.sort();
}

async function ready() {
  const res = await api.http.get('/health/ready');
  return {
    status: res.status,
    details: res.body.details as Record<string, { status: string; message?: string }>,
  };
}

async function readyAgain(): Promise<true> {
  return waitFor('readiness to answer 200', async () => (await ready()).status === 200);
}

/**
 * Holds `table` in exclusive mode (reads go on, writes wait) until the answer is called, as
 * scheduling.int.spec.ts holds the keys table: what must be slow waits on a lock, not a sleep.
 */
async function holdTable(table: string): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((done) => (release = done));
  let finished!: Promise<void>;
  await new Promise<void>((lockTaken, fail) => {
    finished = api.database.db
      .transaction()
      .execute(async (trx) => {
        await sql`lock table ${sql.table(table)} in exclusive mode`.execute(trx);
        lockTaken();
        await released;
      })
      .catch(fail);
  });
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    release();
    await finished;
  };
}

/** The figures a test measured, printed beside jest's own output. */
function report(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function stop(running: Running | undefined): Promise<void> {
  await running?.worker.close();
  await redis.eval(WIPE, 0, `${prefix()}:*`);
}

it('declares the schedules again at its next check when Redis lost them; readiness is 503 meanwhile', async () => {
  const CHECK_MS = 2_000;
  let running: Running | undefined;
  try {
    running = await run(CHECK_MS);
    await everyScheduleRanAfter(running, 0);
    await readyAgain();
    expect((await ready()).details.schedules).toEqual({ status: 'up' });

    // Just after a check, so that the next one is CHECK_MS away while readiness is read.
    const before = (await readScheduleHeartbeat(redis, prefix()))!.checkedAt;
    await waitFor('a fresh heartbeat', async () => {
      const heartbeat = await readScheduleHeartbeat(redis, prefix());
      return heartbeat !== undefined && heartbeat.checkedAt !== before;
    });
    const lost = await redisComesBackEmpty(false);
    expect(lost.keys).toBeGreaterThan(10);
    expect(await declaredSchedules()).toEqual([]);

    const meanwhile = await ready();
    expect(meanwhile.status).toBe(503);
    expect(meanwhile.details.database).toEqual({ status: 'up' });
    expect(meanwhile.details.redis).toEqual({ status: 'up' });
    expect(meanwhile.details.schedules.status).toBe('down');
    expect(meanwhile.details.schedules.message).toMatch(/no schedule heartbeat from any worker/);

    await waitFor('the five schedules declared again', async () => (await declaredSchedules()).length === 5);
    const redeclaredMs = Date.now() - lost.at;
    expect(await declaredSchedules()).toEqual([...SCHEDULE_IDS].sort());
    await everyScheduleRanAfter(running, lost.at);
    const runningAgainMs = Date.now() - lost.at;
    await readyAgain();
    const readyMs = Date.now() - lost.at;
    report(
      `periodic check every ${CHECK_MS} ms: schedules declared again ${redeclaredMs} ms after the loss, ` +
        `every schedule ran again after ${runningAgainMs} ms, readiness 200 again after ${readyMs} ms`,
    );
    expect(redeclaredMs).toBeLessThan(CHECK_MS + 1_500);
    expect(running.logs()).toContainEqual(
      expect.objectContaining({
        msg: 'schedules were missing from Redis and are declared again',
        reason: 'periodic',
        schedules: SCHEDULE_IDS,
      }),
    );
  } finally {
    await stop(running);
  }
});

it('declares the schedules again as soon as its connection comes back to an empty Redis', async () => {
  // No periodic check within this test: what declares them again is the reconnection.
  const CHECK_MS = 600_000;
  let running: Running | undefined;
  try {
    running = await run(CHECK_MS);
    await everyScheduleRanAfter(running, 0);
    await readyAgain();

    const lost = await redisComesBackEmpty(true);
    expect(lost.keys).toBeGreaterThan(10);
    expect(lost.connections.map((c) => c.name)).toContain(`${prefix()}:schedule-keeper`);

    await waitFor('the five schedules declared again', async () => (await declaredSchedules()).length === 5);
    const redeclaredMs = Date.now() - lost.at;
    expect(await declaredSchedules()).toEqual([...SCHEDULE_IDS].sort());
    await everyScheduleRanAfter(running, lost.at);
    const runningAgainMs = Date.now() - lost.at;
    await readyAgain();
    const readyMs = Date.now() - lost.at;
    report(
      `reconnect (${lost.connections.length} connections killed): schedules declared again ${redeclaredMs} ms ` +
        `after the loss, every schedule ran again after ${runningAgainMs} ms, readiness 200 after ${readyMs} ms`,
    );
    expect(redeclaredMs).toBeLessThan(2_000);
    expect(running.logs()).toContainEqual(
      expect.objectContaining({
        msg: 'schedules were missing from Redis and are declared again',
        reason: 'reconnect',
        schedules: SCHEDULE_IDS,
      }),
    );
  } finally {
    await stop(running);
  }
});

it('readiness is 503 naming the schedule no worker took for several intervals, and 200 once it runs', async () => {
  const CHECK_MS = 500;
  let running: Running | undefined;
  let release: (() => Promise<void>) | undefined;
  try {
    running = await run(CHECK_MS);
    await everyScheduleRanAfter(running, 0);
    await readyAgain();

    // A usage flush hangs (on a lock the test holds on the table it cleans up), so the usage
    // queue's worker (concurrency 1) takes no further run: the scheduler is still declared, its
    // next run stays due. Sweeps and the evaluation go on.
    release = await holdTable('usage_batches');
    const heldAt = Date.now();
    const down = await waitFor('readiness to answer 503', async () => {
      const answer = await ready();
      return answer.status === 503 && answer;
    });
    const notReadyMs = Date.now() - heldAt;
    expect(down.details.schedules.status).toBe('down');
    expect(down.details.schedules.message).toMatch(/^usage-flush: no scheduled run taken since \S+Z$/);
    // Not at the first late run: three more a second apart came due after the one not taken.
    expect(notReadyMs).toBeGreaterThanOrEqual(3_000);
    expect(notReadyMs).toBeLessThan(8_000);
    expect(await redis.exists(scheduleHeartbeatKey(prefix()))).toBe(1);

    await release();
    const releasedAt = Date.now();
    await readyAgain();
    const readyMs = Date.now() - releasedAt;
    report(
      `usage-flush not taken: readiness 503 after ${notReadyMs} ms (runs every 1000 ms, check every ` +
        `${CHECK_MS} ms), 200 again ${readyMs} ms after the flush could go on`,
    );
    expect(readyMs).toBeLessThan(3_000);
    const logs = running.logs();
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'scheduled jobs are not running',
        problems: [down.details.schedules.message],
      }),
    );
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'every scheduled job runs again' }));
  } finally {
    await release?.();
    await stop(running);
  }
});
