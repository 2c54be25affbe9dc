import type Redis from 'ioredis';
import type { ScheduleState } from './schedules';

/**
 * What a worker last found of the schedules, written to Redis after every check with a lifetime of
 * a few checks (ScheduleKeeper). The API's readiness reads it: a worker that stopped, or a Redis
 * that lost its data, leaves no heartbeat at all, which says as much as a report of trouble would.
 */
export interface ScheduleHeartbeat {
  /** When the check was made (ISO 8601, real time). */
  checkedAt: string;
  /** Which worker process wrote it (host and pid), for an operator to find its logs. */
  worker: string;
  schedules: ScheduleState[];
}

export function scheduleHeartbeatKey(prefix: string): string {
  return `${prefix}:schedules:heartbeat`;
}

export async function writeScheduleHeartbeat(
  redis: Redis,
  prefix: string,
  heartbeat: ScheduleHeartbeat,
  ttlMs: number,
): Promise<void> {
  await redis.set(scheduleHeartbeatKey(prefix), JSON.stringify(heartbeat), 'PX', ttlMs);
}

/** The last heartbeat, or undefined when none is alive. */
export async function readScheduleHeartbeat(
  redis: Redis,
  prefix: string,
): Promise<ScheduleHeartbeat | undefined> {
  const text = await redis.get(scheduleHeartbeatKey(prefix));
  return text === null ? undefined : (JSON.parse(text) as ScheduleHeartbeat);
}

/** What is wrong with the schedules by this heartbeat, one line each; empty when all run. */
export function scheduleProblems(heartbeat: ScheduleHeartbeat | undefined): string[] {
  if (heartbeat === undefined) {
    return [
      'no schedule heartbeat from any worker: no worker is running, or Redis lost its data ' +
        '(and the schedules with it)',
    ];
  }
  return heartbeat.schedules.flatMap((schedule) => {
    switch (schedule.status) {
      case 'ok':
        return [];
      case 'missing':
        return [`${schedule.id}: schedule missing from Redis`];
      case 'overdue':
        return [`${schedule.id}: no scheduled run taken since ${new Date(schedule.next ?? 0).toISOString()}`];
    }
  });
}
