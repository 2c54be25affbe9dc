import { randomUUID } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';
import { Conflict } from '@keyward/core';

/** How long closing a producer queue may wait for Redis, and then for dropping its connection. */
export const QUEUE_CLOSE_TIMEOUT_MS = 1_000;

/**
 * Closes a producer queue without hanging when Redis is away: BullMQ's close sends QUIT, which a
 * hung Redis never answers and a disconnected client may reject (and a failed close leaves the
 * client reconnecting), so the connection is then dropped; and ioredis 5 never reports the end of
 * a client dropped between two reconnection attempts, so that wait is bounded too.
 */
export async function closeQueue(queue: Queue): Promise<void> {
  if (!(await settlesWithin(queue.close(), QUEUE_CLOSE_TIMEOUT_MS))) {
    await settlesWithin(queue.disconnect(), QUEUE_CLOSE_TIMEOUT_MS);
  }
}

/** Whether `work` fulfils within `ms`; a rejection or a late settlement counts as not. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The BullMQ queues, their job payloads, and how producers reach them. Workers (apps/worker)
 * consume them; the API and scheduled jobs produce. Names and job ids never contain ':'.
 */
export const QUEUES = {
  projections: 'projections',
  usage: 'usage',
  webhooks: 'webhooks',
  sweeps: 'sweeps',
  /** Abuse-signal evaluation over the flushed usage. */
  signals: 'signals',
  /** Scheduled rotations with secret delivery, one job per key. */
  rotations: 'rotations',
} as const;

export interface RebuildProjectionJob {
  projection: string;
  /** The one tenant whose rows are rebuilt; null: every tenant's (the bootstrap token only). */
  tenantId: string | null;
  requestedBy: { type: string; id: string; name: string };
  correlationId: string;
}

export const JOB = {
  rebuildProjection: 'rebuild-projection',
  flushUsage: 'flush-usage',
  deliverWebhook: 'deliver-webhook',
  expireKeys: 'expire-keys',
  /** Rotation due and overdue, unused keys, orphaned accounts; queues auto-rotations. */
  sweepHygiene: 'sweep-hygiene',
  /** Webhook deliveries still pending with no job (queued while Redis was away). */
  requeueDeliveries: 'requeue-deliveries',
  evaluateUsage: 'evaluate-usage',
  rotateKey: 'rotate-key',
} as const;

/**
 * One auto-rotation: the key at the version the sweep saw it. The job id is built from both, so
 * the sweep queuing it again each minute is one job, and a key changed since is a new one.
 */
export interface RotateKeyJob {
  tenantId: string;
  keyId: string;
  version: number;
}

export function rotateKeyJobId(job: RotateKeyJob): string {
  // BullMQ job ids may not contain ':'.
  return `rotate-${job.keyId}-v${job.version}`;
}

/**
 * What "the same rebuild" is: one projection, for one tenant or for all. Tenant ids are
 * `[a-z0-9-]`, so no tenant scope can spell the all-tenants one.
 */
export function rebuildDeduplicationId(job: Pick<RebuildProjectionJob, 'projection' | 'tenantId'>): string {
  const scope = job.tenantId === null ? 'all-tenants' : `tenant-${job.tenantId}`;
  return `rebuild-${job.projection}-${scope}`;
}

/**
 * Queues a rebuild and answers its job id, or throws Conflict while the same rebuild is queued
 * or running. BullMQ's deduplication does the check and the add in one script, so two requests
 * at once cannot both queue; its key goes when the job completes or finally fails (a retry
 * between attempts still holds it), so no finished or failed rebuild blocks the next one. Each
 * job gets an id of its own: the answer names this rebuild, and an id the add did not return
 * means another rebuild held the key.
 */
export async function queueRebuild(
  queue: Queue<RebuildProjectionJob>,
  job: RebuildProjectionJob,
): Promise<string> {
  const jobId = `rebuild-${randomUUID()}`;
  const added = await queue.add(JOB.rebuildProjection, job, {
    jobId,
    deduplication: { id: rebuildDeduplicationId(job) },
  });
  if (added.id !== jobId) {
    const scope = job.tenantId === null ? 'every tenant' : `tenant ${job.tenantId}`;
    throw new Conflict(
      `a rebuild of ${job.projection} for ${scope} is already queued or running (job ${added.id})`,
    );
  }
  return jobId;
}

/** One delivery (a `webhook_deliveries` row); its id is also the job id, so a repeat is one job. */
export interface DeliverWebhookJob {
  deliveryId: string;
}

/** With exponential backoff from 10 s (the default delay), 8 attempts span about 21 minutes. */
export const WEBHOOK_ATTEMPTS = 8;

/** Retries with exponential backoff; failed jobs are kept so an operator can see them. */
export const DEFAULT_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 24 * 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

export function projectionsQueue(connection: ConnectionOptions, prefix: string): Queue<RebuildProjectionJob> {
  return new Queue<RebuildProjectionJob>(QUEUES.projections, {
    connection,
    prefix,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
  });
}

/**
 * The webhooks queue for producers (the API after a commit). `retryDelayMs` is the first retry's
 * delay (config KEYWARD_WEBHOOK_RETRY_DELAY_MS); tests make it small to see retries in seconds.
 */
export function webhooksQueue(
  connection: ConnectionOptions,
  prefix: string,
  retryDelayMs: number,
): Queue<DeliverWebhookJob> {
  return new Queue<DeliverWebhookJob>(QUEUES.webhooks, {
    connection,
    prefix,
    defaultJobOptions: {
      ...DEFAULT_JOB_OPTIONS,
      attempts: WEBHOOK_ATTEMPTS,
      backoff: { type: 'exponential', delay: retryDelayMs },
    },
  });
}

/**
 * The rotations queue for producers (the hygiene sweep). A job retried after a crash finds its
 * unfinished rotation and settles it before starting again (see rotateWithDelivery).
 */
export function rotationsQueue(connection: ConnectionOptions, prefix: string): Queue<RotateKeyJob> {
  return new Queue<RotateKeyJob>(QUEUES.rotations, {
    connection,
    prefix,
    defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, attempts: ROTATION_ATTEMPTS },
  });
}

/** Attempts of one rotation job (each makes its own delivery attempts); the last failure raises ROTATION_FAILED. */
export const ROTATION_ATTEMPTS = 3;
