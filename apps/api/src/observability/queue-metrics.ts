import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { QueueStats, type QueueFigures } from '@keyward/jobs';
import { producerConnection } from '@keyward/redis';
import { Metrics } from './metrics';

/**
 * How long a scrape waits for the queues' figures. Well under Prometheus's default 10 s scrape
 * timeout, so with Redis away /metrics still answers with everything else.
 */
export const QUEUE_READ_TIMEOUT_MS = 2_000;

/**
 * BullMQ queue figures on /metrics, read from Redis when scraped (collect callbacks), so nothing
 * polls in the background and every API instance reports the same shared figures. When Redis
 * cannot be read in time, `keyward_queue_metrics_up` is 0 and the queue series are left out of that
 * scrape: stale figures would look healthy, and an absent series cannot be alerted on where a 0 can.
 */
@Injectable()
export class QueueMetrics implements OnApplicationShutdown {
  private readonly stats: QueueStats;
  /** The read of the scrape under way: its metrics are collected together and share one read. */
  private reading?: Promise<QueueFigures[] | undefined>;

  constructor(@Inject(Metrics) metrics: Metrics, @Inject(CONFIG) config: KeywardConfig) {
    // A connection of its own that fails fast, as the API's producers have (see producerConnection).
    this.stats = new QueueStats(producerConnection(config.redisUrl), config.redisPrefix);
    const registers = [metrics.registry];
    const read = () => this.read();

    new Gauge({
      name: 'keyward_queue_metrics_up',
      help: 'Whether this scrape could read the BullMQ queues from Redis (1) or not (0, queue series left out)',
      registers,
      async collect() {
        this.set((await read()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'keyward_queue_jobs',
      help:
        'BullMQ jobs by queue and state now. state="failed" is the failed-jobs figure: jobs out of ' +
        'attempts, kept 7 days for an operator. state="completed" is what retention keeps, not a total',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        for (const { queue, jobs } of (await read()) ?? []) {
          for (const [state, count] of Object.entries(jobs)) this.set({ queue, state }, count);
        }
      },
    });
    new Counter({
      name: 'keyward_queue_job_outcomes_total',
      help:
        'BullMQ jobs finished for good, by queue and outcome (completed, or failed after its last ' +
        'attempt), counted by the workers in Redis since the queue began keeping metrics',
      labelNames: ['queue', 'outcome'] as const,
      registers,
      async collect() {
        // Redis holds the running totals; the counter is set to them, never added to.
        this.reset();
        for (const { queue, outcomes } of (await read()) ?? []) {
          for (const [outcome, count] of Object.entries(outcomes)) this.inc({ queue, outcome }, count);
        }
      },
    });
  }

  /** Undefined when Redis cannot be read in time; the caller's scrape goes on without it. */
  private read(): Promise<QueueFigures[] | undefined> {
    this.reading ??= this.stats
      .read(QUEUE_READ_TIMEOUT_MS)
      .catch(() => undefined)
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stats.close();
  }
}
