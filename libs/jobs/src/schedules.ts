import { Queue, type ConnectionOptions } from 'bullmq';
import { DEFAULT_JOB_OPTIONS, JOB, QUEUES } from './queues';

/** What the schedules depend on; from the config. */
export interface ScheduleSettings {
  usageFlushIntervalMs: number;
}

/**
 * Every scheduled job, declared from this one place. `upsertJobScheduler` makes declaring
 * idempotent: each worker process declares at start, and each run still happens once.
 *
 * The usage flush runs on an interval (`every`) rather than a cron pattern: it only needs to run
 * often, at any phase, and its interval is configured in milliseconds.
 */
export async function declareSchedules(
  connection: ConnectionOptions,
  prefix: string,
  settings: ScheduleSettings,
): Promise<void> {
  const usage = new Queue(QUEUES.usage, { connection, prefix });
  try {
    await usage.upsertJobScheduler(
      'usage-flush',
      { every: settings.usageFlushIntervalMs },
      { name: JOB.flushUsage, data: {}, opts: { ...DEFAULT_JOB_OPTIONS, removeOnComplete: { count: 100 } } },
    );
  } finally {
    await usage.close();
  }
}
