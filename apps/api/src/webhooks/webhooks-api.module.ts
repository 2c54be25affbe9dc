import { Inject, Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { DB, type Db } from '@keyward/db';
import { EventStore, type RecordedEvent } from '@keyward/event-store';
import { closeQueue, webhooksQueue, type DeliverWebhookJob } from '@keyward/jobs';
import { producerConnection } from '@keyward/redis';
import { WebhooksModule, queueDeliveries, recordDeliveries } from '@keyward/webhooks';
import { WebhooksController } from './webhooks.controller';

export const WEBHOOKS_QUEUE = Symbol('WEBHOOKS_QUEUE');

/**
 * After every commit in this process: record the deliveries the events call for (in PostgreSQL,
 * before the answer, so the change's answer is followed by its deliveries in the list), then
 * queue one job per delivery after the answer: a Redis that is away must not hold a committed
 * write. The events are stored already; a failure is logged and leaves the delivery rows
 * pending, where the lost-delivery sweep finds them a minute later; it never fails the change.
 */
@Injectable()
export class WebhookDispatch implements OnModuleInit, OnApplicationShutdown {
  private unsubscribe: (() => void) | null = null;
  /** Enqueues started after an answer and not settled yet; shutdown waits for them (bounded). */
  private readonly queuing = new Set<Promise<void>>();

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
    let ids: string[];
    try {
      ids = await recordDeliveries(this.db, events);
    } catch (error) {
      this.logger.error(
        { err: error, events: events.map((e) => e.eventId) },
        'webhook deliveries could not be recorded',
      );
      return;
    }
    if (ids.length === 0) return;
    const queuing: Promise<void> = queueDeliveries(this.queue, ids)
      .catch((error: unknown) =>
        this.logger.warn(
          { err: error, deliveries: ids },
          'webhook deliveries recorded but not queued; the lost-delivery sweep queues them',
        ),
      )
      .finally(() => this.queuing.delete(queuing));
    this.queuing.add(queuing);
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe?.();
    await Promise.all([...this.queuing]);
    await closeQueue(this.queue);
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
