import { Queue } from 'bullmq';
import Redis, { type RedisOptions } from 'ioredis';
import { QUEUES } from './queues';

/**
 * The job states a queue reports. `failed` is the failed-jobs figure an operator watches: jobs out
 * of attempts, kept 7 days (DEFAULT_JOB_OPTIONS.removeOnFail). `completed` is what retention keeps,
 * not how many ever completed: JobOutcomes says that.
 */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/**
 * Jobs finished for good since the queue's metrics began, as BullMQ's own worker metrics count them
 * in Redis (the worker's `metrics` option): every worker process adds to the same figures, and a
 * retried job counts once, when it completes or runs out of attempts. They only grow (until the
 * queue is obliterated), so they are counters: per-window figures are rate() over them.
 */
export interface JobOutcomes {
  completed: number;
  failed: number;
}

export interface QueueFigures {
  queue: string;
  jobs: Record<QueueState, number>;
  outcomes: JobOutcomes;
}

/**
 * Reads job counts and outcomes of every queue, for /metrics. The queues are read-only: they add
 * no job and leave the queues' meta alone (a producer's or worker's options are not ours to write).
 * Every queue reads through one connection this class owns (made from `options`, e.g.
 * producerConnection's): a connection per queue would cost an API instance one Redis connection
 * per queue for a scrape. Its errors are listened to here, so a late connection error while
 * Redis is away is never an uncaught exception.
 */
export class QueueStats {
  private readonly queues: Queue[];
  private readonly client: Redis;

  constructor(options: RedisOptions, prefix: string, names: readonly string[] = Object.values(QUEUES)) {
    this.client = new Redis({ ...options, lazyConnect: true });
    this.client.on('error', () => undefined);
    this.queues = names.map(
      (name) => new Queue(name, { connection: this.client, prefix, skipMetasUpdate: true }),
    );
  }

  /**
   * Every queue's figures, or a rejection after `timeoutMs`: while Redis is away BullMQ waits for
   * the connection without end, and a scrape must not hang on it.
   */
  async read(timeoutMs: number): Promise<QueueFigures[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`queue figures not read within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      // A read that loses the race settles later into nothing: race() has already handled it.
      return await Promise.race([Promise.all(this.queues.map((queue) => readQueue(queue))), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()));
    this.client.disconnect();
  }
}

async function readQueue(queue: Queue): Promise<QueueFigures> {
  // Only the running totals are needed, not the per-minute data points: ask for one point at most.
  const [counts, completed, failed] = await Promise.all([
    queue.getJobCounts(...QUEUE_STATES),
    queue.getMetrics('completed', 0, 0),
    queue.getMetrics('failed', 0, 0),
  ]);
  const jobs = Object.fromEntries(QUEUE_STATES.map((state) => [state, counts[state] ?? 0])) as Record<
    QueueState,
    number
  >;
  return {
    queue: queue.name,
    jobs,
    outcomes: { completed: completed.meta.count, failed: failed.meta.count },
  };
}
