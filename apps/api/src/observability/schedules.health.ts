import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { readScheduleHeartbeat, scheduleProblems } from '@keyward/jobs';
import { REDIS } from '@keyward/redis';

/**
 * Readiness of the scheduled jobs (usage flush, sweeps, evaluation), from the heartbeat the
 * worker writes after each check of its schedules (ScheduleKeeper): none alive, a schedule
 * missing or one overdue is a failed check naming what is wrong.
 */
@Injectable()
export class SchedulesHealth {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(CONFIG) private readonly config: KeywardConfig,
  ) {}

  async check(): Promise<void> {
    const problems = scheduleProblems(await readScheduleHeartbeat(this.redis, this.config.redisPrefix));
    if (problems.length > 0) throw new Error(problems.join('; '));
  }
}
