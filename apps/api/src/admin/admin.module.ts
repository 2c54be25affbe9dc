import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { closeQueue, projectionsQueue } from '@keyward/jobs';
import { producerConnection } from '@keyward/redis';
import { AdminController, PROJECTIONS_QUEUE } from './admin.controller';

@Module({
  controllers: [AdminController],
  providers: [
    {
      provide: PROJECTIONS_QUEUE,
      inject: [CONFIG],
      // A fail-fast connection of the queue's own: with Redis away, a request answers 503 at once.
      useFactory: (config: KeywardConfig) =>
        projectionsQueue(producerConnection(config.redisUrl), config.redisPrefix),
    },
  ],
})
export class AdminModule implements OnApplicationShutdown {
  constructor(@Inject(PROJECTIONS_QUEUE) private readonly queue: Queue) {}

  async onApplicationShutdown(): Promise<void> {
    await closeQueue(this.queue);
  }
}
