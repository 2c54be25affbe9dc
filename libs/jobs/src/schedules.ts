import { Queue, type ConnectionOptions } from 'bullmq';
import { DEFAULT_JOB_OPTIONS, JOB, QUEUES } from './queues';

/** What the schedules depend on; from the config. */
export interface ScheduleSettings {
  usageFlushCron: string;
  sweepCron: string;
  abuseCron: string;
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
  const sweeps = new Queue(QUEUES.sweeps, { connection, prefix });
  const signals = new Queue(QUEUES.signals, { connection, prefix });
  const frequent = { ...DEFAULT_JOB_OPTIONS, removeOnComplete: { count: 100 } };
  try {
    await usage.upsertJobScheduler(
      'usage-flush',
      { pattern: settings.usageFlushCron },
      { name: JOB.flushUsage, data: {}, opts: frequent },
    );
    await sweeps.upsertJobScheduler(
      'expiry-sweep',
      { pattern: settings.sweepCron },
      { name: JOB.expireKeys, data: {}, opts: frequent },
    );
    await sweeps.upsertJobScheduler(
      'hygiene-sweep',
      { pattern: settings.sweepCron },
      { name: JOB.sweepHygiene, data: {}, opts: frequent },
    );
    await sweeps.upsertJobScheduler(
      'requeue-deliveries',
      { pattern: settings.sweepCron },
      { name: JOB.requeueDeliveries, data: {}, opts: frequent },
    );
    await signals.upsertJobScheduler(
      'usage-evaluation',
      { pattern: settings.abuseCron },
      { name: JOB.evaluateUsage, data: {}, opts: frequent },
    );
  } finally {
    await Promise.all([usage.close(), sweeps.close(), signals.close()]);
  }
}
