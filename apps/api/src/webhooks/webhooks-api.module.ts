import { Inject, Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { DB, type Db } from '@keyward/db';
import { EventStore, type RecordedEvent } from '@keyward/event-store';
import { webhooksQueue, type DeliverWebhookJob } from '@keyward/jobs';
import { producerConnection } from '@keyward/redis';
import { WebhooksModule, dispatchWebhooks } from '@keyward/webhooks';
import { WebhooksController } from './webhooks.controller';

export const WEBHOOKS_QUEUE = Symbol('WEBHOOKS_QUEUE');

/**
 * After every commit in this process: record the deliveries the events call for and queue one job
 * per delivery (job id = delivery id). The events are stored already; a failure here is logged
 * and leaves the delivery rows pending, never fails the change.
 */
@Injectable()
export class WebhookDispatch implements OnModuleInit, OnApplicationShutdown {
  private unsubscribe: (() => void) | null = null;

  constructor(
    @Inject(EventStore) private readonly events: EventStore,
    @Inject(DB) private readonly db: Db,
    @Inject(WEBHOOKS_QUEUE) private readonly queue: Queue<DeliverWebhookJob>,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('WebhookDispatch');
  }

  onModuleInit(): void {
    this.unsubscribe = this.events.onCommitted((events) => this.committed(events));
  }

  async committed(events: readonly RecordedEvent[]): Promise<void> {
    try {
      await dispatchWebhooks(this.db, this.queue, events);
    } catch (error) {
      this.logger.error(
        { err: error, events: events.map((e) => e.eventId) },
        'webhook deliveries could not be recorded or queued',
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe?.();
    await this.queue.close();
  }
}

/** API.md "Operators, tenants, webhooks": webhook registration and deliveries. */
@Module({
  imports: [WebhooksModule],
  controllers: [WebhooksController],
  providers: [
    {
      provide: WEBHOOKS_QUEUE,
      inject: [CONFIG],
      // A fail-fast connection of the queue's own (see producerConnection), not the shared client.
      useFactory: (config: KeywardConfig) =>
        webhooksQueue(producerConnection(config.redisUrl), config.redisPrefix, config.webhookRetryDelayMs),
    },
    WebhookDispatch,
  ],
})
export class WebhooksApiModule {}
