import { Queue, defaultRepeatStrategy, type ConnectionOptions } from 'bullmq';
import { DEFAULT_JOB_OPTIONS, JOB, QUEUES } from './queues';

/** What the schedules depend on; from the config. */
export interface ScheduleSettings {
  usageFlushCron: string;
  sweepCron: string;
  abuseCron: string;
}

/**
 * One job scheduler. Its id is also the `repeatJobKey` of every job it hands out, and those jobs'
 * ids are `repeat:<id>:<scheduled ms>`.
 */
export interface ScheduleSpec {
  id: string;
  queue: string;
  job: string;
  pattern: string;
}

/** Every scheduled job, from this one place. Patterns come from the config (KEYWARD_*_CRON). */
export function scheduleSpecs(settings: ScheduleSettings): ScheduleSpec[] {
  return [
    { id: 'usage-flush', queue: QUEUES.usage, job: JOB.flushUsage, pattern: settings.usageFlushCron },
    { id: 'expiry-sweep', queue: QUEUES.sweeps, job: JOB.expireKeys, pattern: settings.sweepCron },
    { id: 'hygiene-sweep', queue: QUEUES.sweeps, job: JOB.sweepHygiene, pattern: settings.sweepCron },
    {
      id: 'requeue-deliveries',
      queue: QUEUES.sweeps,
      job: JOB.requeueDeliveries,
      pattern: settings.sweepCron,
    },
    { id: 'usage-evaluation', queue: QUEUES.signals, job: JOB.evaluateUsage, pattern: settings.abuseCron },
  ];
}

/**
 * A schedule is overdue when this many of its runs came due after the one it still waits to hand
 * out: no worker has taken a scheduled run for that many intervals (3 minutes for a sweep every
 * minute, 15 s for the usage flush every 5 s).
 */
export const OVERDUE_RUNS = 3;

/**
 * `missing`: the scheduler, its place in the queue's schedule, or the job it waits to hand out is
 * not in Redis (Redis came back empty, or keys were deleted): nothing will run until it is declared
 * again. `overdue`: it is there, but no worker took its runs for OVERDUE_RUNS intervals.
 */
export type ScheduleStatus = 'ok' | 'missing' | 'overdue';

export interface ScheduleState {
  id: string;
  status: ScheduleStatus;
  /** When the run it waits to hand out was due (ms); absent when missing. */
  next?: number;
}

/**
 * Whether `runs` further runs of `pattern` came due after `next` by `now`. Computed with BullMQ's
 * own cron strategy, so it counts the runs the scheduler itself would make, irregular patterns too.
 */
export function isOverdue(pattern: string, next: number, now: number, runs = OVERDUE_RUNS): boolean {
  let due = next;
  for (let i = 0; i < runs; i++) {
    const following = defaultRepeatStrategy(due, { pattern });
    // A pattern with no further run (cron-parser found none) can never be overdue.
    if (following === undefined || following <= due) return false;
    due = following;
  }
  return now > due;
}

/** Job options of scheduled runs: they come often, so only the last 100 completed are kept. */
const SCHEDULED_JOB_OPTIONS = { ...DEFAULT_JOB_OPTIONS, removeOnComplete: { count: 100 } };

/**
 * The job schedulers on their queues: declare them, and read whether they are still in Redis and
 * still handed out. `upsertJobScheduler` makes declaring idempotent: each worker process declares
 * at start (and again whenever it finds one missing), and each run still happens once.
 */
export class Schedules {
  readonly specs: readonly ScheduleSpec[];
  private readonly queues = new Map<string, Queue>();

  constructor(connection: ConnectionOptions, prefix: string, settings: ScheduleSettings) {
    this.specs = scheduleSpecs(settings);
    for (const { queue } of this.specs) {
      if (!this.queues.has(queue)) this.queues.set(queue, new Queue(queue, { connection, prefix }));
    }
  }

  /** Declares the schedules named (every one by default), in the order of scheduleSpecs. */
  async declare(ids: readonly string[] = this.specs.map((spec) => spec.id)): Promise<void> {
    for (const spec of this.specs) {
      if (!ids.includes(spec.id)) continue;
      await this.queue(spec).upsertJobScheduler(
        spec.id,
        { pattern: spec.pattern },
        { name: spec.job, data: {}, opts: SCHEDULED_JOB_OPTIONS },
      );
    }
  }

  /** Every schedule's state as Redis holds it now (`now` in ms, real time: BullMQ's own). */
  async inspect(now = Date.now()): Promise<ScheduleState[]> {
    return Promise.all(
      this.specs.map(async (spec): Promise<ScheduleState> => {
        const queue = this.queue(spec);
        const scheduler = await queue.getJobScheduler(spec.id);
        const next = scheduler?.next ?? undefined;
        if (next === undefined) return { id: spec.id, status: 'missing' };
        // Its place in the schedule can outlive the job it points to (keys lost one by one).
        if ((await queue.getJobState(`repeat:${spec.id}:${next}`)) === 'unknown') {
          return { id: spec.id, status: 'missing' };
        }
        const overdue = isOverdue(scheduler?.pattern ?? spec.pattern, next, now);
        return { id: spec.id, status: overdue ? 'overdue' : 'ok', next };
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }

  private queue(spec: ScheduleSpec): Queue {
    return this.queues.get(spec.queue)!;
  }
}

/** Declares every schedule once (what a worker does at start), closing its queues after. */
export async function declareSchedules(
  connection: ConnectionOptions,
  prefix: string,
  settings: ScheduleSettings,
): Promise<void> {
  const schedules = new Schedules(connection, prefix, settings);
  try {
    await schedules.declare();
  } finally {
    await schedules.close();
  }
}
