import { MetricsTime, Worker, type Processor } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { KeywardConfig } from '@keyward/config';
import { systemClock, type Clock } from '@keyward/core';
import { createDb, type Db } from '@keyward/db';
import { EventStore } from '@keyward/event-store';
import { secretDeliverySigningSecret } from '@keyward/accounts';
import type { RotationScheduler } from '@keyward/hygiene';
import {
  JOB,
  QUEUES,
  SCHEDULE_CHECK_MS,
  ScheduleKeeper,
  rotateKeyJobId,
  rotationsQueue,
  webhooksQueue,
} from '@keyward/jobs';
import { inlineProjections } from '@keyward/projections';
import { closeRedis, createRedis, producerConnection, workerConnection } from '@keyward/redis';
import { publishKeyInvalidations } from '@keyward/keys';
import { UsageCounters } from '@keyward/usage';
import { SecretBox, dispatchWebhooks } from '@keyward/webhooks';
import { projectionsProcessor } from './processors/projections.processor';
import { usageProcessor } from './processors/usage.processor';
import { rotationsProcessor } from './processors/rotations.processor';
import { signalsProcessor } from './processors/signals.processor';
import { sweepsProcessor } from './processors/sweeps.processor';
import { webhooksProcessor } from './processors/webhooks.processor';

export interface KeywardWorker {
  workers: Worker[];
  db: Db;
  /** Lets running jobs finish, then closes every connection (SIGTERM). */
  close(): Promise<void>;
}

/** One POST of a new secret: as long as a webhook delivery may take. */
const SECRET_DELIVERY_TIMEOUT_MS = 10_000;
/** POSTs before a scheduled rotation gives up and revokes the undelivered key. */
const SECRET_DELIVERY_ATTEMPTS = 5;

/** BullMQ loses jobs when Redis may evict keys; say so at start rather than after a lost job. */
export async function checkEvictionPolicy(redis: Redis, logger: Logger): Promise<string | undefined> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy !== 'noeviction') {
      logger.warn(
        { policy },
        'Redis maxmemory-policy is not noeviction: BullMQ jobs can be lost under memory pressure',
      );
    }
    return policy;
  } catch (error) {
    // Managed Redis often forbids CONFIG; that is not a reason to refuse to start.
    logger.warn({ err: error }, 'could not read Redis maxmemory-policy; make sure it is noeviction');
    return undefined;
  }
}

/** Starts one BullMQ worker per queue; processors stay thin and call into libs. */
export async function startWorker(
  config: KeywardConfig,
  logger: Logger,
  options: { clock?: Clock; scheduleCheckMs?: number } = {},
): Promise<KeywardWorker> {
  const clock = options.clock ?? systemClock;
  // Every connection of the worker is named after the deployment's prefix, so an operator's
  // CLIENT LIST tells them apart (BullMQ names its blocking connections the same way).
  const connectionName = `${config.redisPrefix}:keyward-worker`;
  const db = createDb(config.databaseUrl, { applicationName: 'keyward-worker', max: 5 });
  // Scheduled jobs decide as operators' commands do, through the same event store and projections.
  const store = new EventStore(db, inlineProjections, clock);
  const connection = workerConnection(config.redisUrl, { connectionName });
  // Processors' own commands fail fast (the job fails and is retried) instead of hanging.
  const commands = createRedis(config.redisUrl, { connectionName });
  await checkEvictionPolicy(connection, logger);
  const schedules = keepSchedules(config, logger, options.scheduleCheckMs ?? SCHEDULE_CHECK_MS);
  await schedules.start();
  // What the worker appends (KeyExpired from the sweep) reaches webhooks as the API's appends do.
  const deliveries = webhooksQueue(
    { ...producerConnection(config.redisUrl), connectionName },
    config.redisPrefix,
    config.webhookRetryDelayMs,
  );
  // What the worker revokes (unused keys, undelivered replacements) leaves every API instance's
  // verify cache at once, as the API's own changes do.
  store.onCommitted((events) =>
    publishKeyInvalidations(commands, config.redisPrefix, events).then(
      () => undefined,
      (error: unknown) =>
        logger.warn(
          { err: error },
          'could not publish key invalidations; caches catch up within their lifetime',
        ),
    ),
  );
  store.onCommitted((events) =>
    dispatchWebhooks(db, deliveries, events).then(
      () => undefined,
      (error: unknown) => logger.error({ err: error }, 'webhook deliveries could not be recorded or queued'),
    ),
  );

  // The hygiene sweep hands due keys of auto-rotating accounts to the rotations queue; the job
  // id names the key and the version seen, so a sweep a minute later adds nothing.
  const rotateQueue = rotationsQueue(
    { ...producerConnection(config.redisUrl), connectionName },
    config.redisPrefix,
  );
  const rotations: RotationScheduler = {
    schedule: async (jobs) => {
      await rotateQueue.addBulk(
        jobs.map((data) => ({ name: JOB.rotateKey, data, opts: { jobId: rotateKeyJobId(data) } })),
      );
    },
  };
  const box = new SecretBox(config.encryptionKey);
  const secretDelivery = {
    signingSecret: (tenantId: string, accountId: string) =>
      secretDeliverySigningSecret(db, box, tenantId, accountId),
    allowPrivate: config.webhookAllowPrivate,
    timeoutMs: SECRET_DELIVERY_TIMEOUT_MS,
    attempts: SECRET_DELIVERY_ATTEMPTS,
    // Secret deliveries back off as webhook deliveries do (KEYWARD_WEBHOOK_RETRY_DELAY_MS).
    retryDelayMs: config.webhookRetryDelayMs,
  };

  const processors: [string, Processor][] = [
    [QUEUES.projections, projectionsProcessor(db)],
    [QUEUES.usage, usageProcessor(db, new UsageCounters(commands, config.redisPrefix))],
    [QUEUES.webhooks, webhooksProcessor(db, config)],
    [QUEUES.sweeps, sweepsProcessor(db, store, clock, rotations, deliveries)],
    [QUEUES.signals, signalsProcessor(db, store, clock, logger)],
    [QUEUES.rotations, rotationsProcessor(db, store, clock, secretDelivery)],
  ];
  const workers = processors.map(([queue, processor]) => {
    // BullMQ counts completed and failed jobs in Redis itself (the API's /metrics reads them); a
    // week of per-minute points, as long as failed jobs are kept.
    const worker = new Worker(queue, processor, {
      connection,
      prefix: config.redisPrefix,
      concurrency: 1,
      metrics: { maxDataPoints: MetricsTime.ONE_WEEK },
    });
    worker.on('completed', (job) =>
      logger.info({ queue, jobId: job.id, name: job.name, result: job.returnvalue }, 'job completed'),
    );
    worker.on('failed', (job, error) =>
      logger.error(
        { queue, jobId: job?.id, name: job?.name, attempts: job?.attemptsMade, err: error },
        'job failed',
      ),
    );
    worker.on('error', (error) => logger.error({ queue, err: error }, 'worker error'));
    return worker;
  });
  logger.info({ queues: processors.map(([q]) => q) }, 'worker started');

  return {
    workers,
    db,
    close: async () => {
      // First, so that no schedule is declared again by a worker on its way out.
      await schedules.close();
      await Promise.all(workers.map((w) => w.close()));
      await deliveries.close();
      await rotateQueue.close();
      await db.destroy();
      await closeRedis(commands);
      await closeRedis(connection);
    },
  };
}

/**
 * The worker's ScheduleKeeper, on a connection of its own that fails fast (a check during an
 * outage fails and the next one tries again), saying in the log when it declared schedules again
 * and when scheduled jobs stopped or started running.
 */
function keepSchedules(config: KeywardConfig, logger: Logger, checkEveryMs: number): ScheduleKeeper {
  let reported = '';
  return new ScheduleKeeper({
    redis: producerConnection(config.redisUrl),
    prefix: config.redisPrefix,
    settings: config,
    checkEveryMs,
    events: {
      redeclared: (ids, reason) =>
        logger.warn({ schedules: ids, reason }, 'schedules were missing from Redis and are declared again'),
      checked: (problems, _states, reason) => {
        // Said when it changes, not at every check.
        const now = problems.join('; ');
        if (now === reported) return;
        if (problems.length > 0) logger.error({ problems, reason }, 'scheduled jobs are not running');
        else logger.info({ reason }, 'every scheduled job runs again');
        reported = now;
      },
      failed: (error, reason) =>
        logger.warn({ err: error, reason }, 'could not check the schedules; the next check tries again'),
    },
  });
}
