import { hostname } from 'node:os';
import Redis, { type RedisOptions } from 'ioredis';
import { scheduleProblems, writeScheduleHeartbeat, type ScheduleHeartbeat } from './schedule-heartbeat';
import { Schedules, type ScheduleSettings, type ScheduleState } from './schedules';

/** Why a check ran: at start, on the periodic timer, or because the Redis connection came back. */
export type CheckReason = 'start' | 'periodic' | 'reconnect';

/** What the keeper tells its owner (the worker logs it); called after the fact, never awaited. */
export interface ScheduleKeeperEvents {
  /** Schedules found missing from Redis were declared again. */
  redeclared(ids: string[], reason: CheckReason): void;
  /** A check was made and its heartbeat written; `problems` is empty when every schedule runs. */
  checked(problems: string[], states: ScheduleState[], reason: CheckReason): void;
  /** A check could not be made (Redis away); the next one tries again. */
  failed(error: unknown, reason: CheckReason): void;
}

export interface ScheduleKeeperOptions {
  /** Options of the keeper's own connection; it should fail fast (producerConnection). */
  redis: RedisOptions;
  prefix: string;
  settings: ScheduleSettings;
  /** Between the end of one periodic check and the start of the next. */
  checkEveryMs: number;
  events: ScheduleKeeperEvents;
}

/** How often a worker checks its schedules by default. */
export const SCHEDULE_CHECK_MS = 10_000;

/**
 * A heartbeat outlives this many checks, so one slow or failed check does not take readiness down,
 * while a worker that stopped checking is noticed within that many intervals.
 */
export const HEARTBEAT_CHECKS = 3;

/**
 * Keeps the schedules declared while the worker runs. Declaring only at start is not enough: a
 * Redis that restarts without its data (no persistence, a failover to an empty replica, a flush)
 * comes back with no job schedulers, and then no scheduled job runs again, silently. So every
 * `checkEveryMs`, and at once whenever its connection to Redis comes back, the keeper reads each
 * schedule, declares again the ones missing, and writes what it found as a heartbeat with a
 * lifetime of HEARTBEAT_CHECKS checks, which the API's readiness reads (scheduleProblems).
 */
export class ScheduleKeeper {
  private readonly client: Redis;
  private readonly schedules: Schedules;
  private readonly worker = `${hostname()}:${process.pid}`;
  /** The check under way or last made; checks run one at a time, in the order asked. */
  private checking: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private readyCount = 0;
  private closed = false;

  constructor(private readonly options: ScheduleKeeperOptions) {
    this.client = new Redis({ ...options.redis, connectionName: `${options.prefix}:schedule-keeper` });
    // Reconnection is ioredis's job; a failed check is reported through `failed`.
    this.client.on('error', () => undefined);
    this.client.on('ready', () => {
      // The first ready is the connection's start; any later one follows a lost connection, and
      // what Redis holds now may be nothing at all.
      this.readyCount += 1;
      if (this.readyCount > 1 && !this.closed) void this.check('reconnect');
    });
    this.schedules = new Schedules(this.client, options.prefix, options.settings);
  }

  /** Declares every schedule and writes the first heartbeat; rejects when Redis does not take them. */
  async start(): Promise<void> {
    await this.schedules.declare();
    await this.run('start');
    this.plan();
  }

  /** Checks now (after any check under way); a failure is reported, never thrown. */
  check(reason: CheckReason): Promise<void> {
    const next = this.checking.then(() =>
      this.closed
        ? undefined
        : this.run(reason).catch((error: unknown) => this.options.events.failed(error, reason)),
    );
    this.checking = next;
    return next;
  }

  /** Stops checking, lets a check under way end, and closes the connection. The heartbeat is left
   * to expire: another worker may still be alive and writing it. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.checking;
    await this.schedules.close();
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  private plan(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.check('periodic').then(() => this.plan());
    }, this.options.checkEveryMs);
  }

  private async run(reason: CheckReason): Promise<void> {
    let states = await this.schedules.inspect();
    const missing = states.filter((state) => state.status === 'missing').map((state) => state.id);
    if (missing.length > 0) {
      await this.schedules.declare(missing);
      this.options.events.redeclared(missing, reason);
      states = await this.schedules.inspect();
    }
    const heartbeat: ScheduleHeartbeat = {
      checkedAt: new Date().toISOString(),
      worker: this.worker,
      schedules: states,
    };
    await writeScheduleHeartbeat(
      this.client,
      this.options.prefix,
      heartbeat,
      this.options.checkEveryMs * HEARTBEAT_CHECKS,
    );
    this.options.events.checked(scheduleProblems(heartbeat), states, reason);
  }
}
