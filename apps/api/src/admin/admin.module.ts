import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { projectionsQueue } from '@keyward/jobs';
import { REDIS } from '@keyward/redis';
import { AdminController, PROJECTIONS_QUEUE } from './admin.controller';

@Module({
  controllers: [AdminController],
  providers: [
    {
      provide: PROJECTIONS_QUEUE,
      inject: [CONFIG, REDIS],
      // Producers share the API's fail-fast Redis client: with Redis away, a request answers 503 at once.
      useFactory: (config: KeywardConfig, redis: Redis) => projectionsQueue(redis, config.redisPrefix),
    },
  ],
})
export class AdminModule implements OnApplicationShutdown {
  constructor(@Inject(PROJECTIONS_QUEUE) private readonly queue: Queue) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queue.close();
  }
}
