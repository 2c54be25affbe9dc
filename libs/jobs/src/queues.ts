import { Queue, type ConnectionOptions } from 'bullmq';

/**
 * The BullMQ queues, their job payloads, and how producers reach them. Workers (apps/worker)
 * consume them; the API and scheduled jobs produce. Names and job ids never contain ':'.
 */
export const QUEUES = {
  projections: 'projections',
  usage: 'usage',
} as const;

export interface RebuildProjectionJob {
  projection: string;
  requestedBy: { type: string; id: string; name: string };
  correlationId: string;
}

export const JOB = {
  rebuildProjection: 'rebuild-projection',
  flushUsage: 'flush-usage',
} as const;

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
