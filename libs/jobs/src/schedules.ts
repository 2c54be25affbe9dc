import { Queue, type ConnectionOptions } from 'bullmq';
import { DEFAULT_JOB_OPTIONS, JOB, QUEUES } from './queues';

/** What the schedules depend on; from the config. */
export interface ScheduleSettings {
  usageFlushCron: string;
}

/**
 * Every scheduled job, declared from this one place. `upsertJobScheduler` makes declaring
 * idempotent: each worker process declares at start, and each run still happens once.
 * Patterns come from the config (KEYWARD_*_CRON).
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
      { pattern: settings.usageFlushCron },
      { name: JOB.flushUsage, data: {}, opts: { ...DEFAULT_JOB_OPTIONS, removeOnComplete: { count: 100 } } },
    );
  } finally {
    await usage.close();
  }
}
