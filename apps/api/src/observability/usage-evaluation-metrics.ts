import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { CLOCK, type Clock } from '@keyward/core';
import { DB, type Db } from '@keyward/db';
import {
  USAGE_EVALUATION_CHECKPOINT,
  readUsageEvaluationStatus,
  type UsageEvaluationStatus,
} from '@keyward/signals';
import { Metrics } from './metrics';

/** How long a scrape waits for the evaluation's state; as long as it waits for the queues. */
export const USAGE_EVALUATION_READ_TIMEOUT_MS = 2_000;

/**
 * The worker's usage evaluation on /metrics, read from PostgreSQL when scraped: how far behind its
 * checkpoint is, and the detector-minutes it skipped (a detector that failed or ran past its
 * budget; usage_evaluation_skips lists them). An evaluation stuck on one minute shows as a lag
 * that keeps growing; detection lost for a minute shows as a skip. When the database cannot be
 * read in time, `keyward_usage_evaluation_metrics_up` is 0 and the other series are left out.
 */
@Injectable()
export class UsageEvaluationMetrics {
  /** The read of the scrape under way: its metrics are collected together and share one read. */
  private reading?: Promise<UsageEvaluationStatus | undefined>;

  constructor(
    @Inject(Metrics) metrics: Metrics,
    @Inject(DB) private readonly db: Db,
    @Inject(CLOCK) clock: Clock,
  ) {
    const registers = [metrics.registry];
    const read = () => this.read();

    new Gauge({
      name: 'keyward_usage_evaluation_metrics_up',
      help: 'Whether this scrape could read the usage evaluation from PostgreSQL (1) or not (0, its series left out)',
      registers,
      async collect() {
        this.set((await read()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'keyward_usage_evaluation_lag_seconds',
      help:
        'Seconds from the end of the last minute the usage evaluation finished to now: 30 to 90 ' +
        'when it keeps up (a minute settles 30 s, runs are a minute apart); growing, it is stuck or ' +
        'behind. Absent before the first run',
      // Labelled so that, with no checkpoint yet, the series is absent rather than a healthy-looking 0.
      labelNames: ['checkpoint'] as const,
      registers,
      async collect() {
        this.reset();
        const status = await read();
        if (!status?.lastMinute) return;
        const lag = (clock.now().getTime() - status.lastMinute.getTime() - 60_000) / 1000;
        this.set({ checkpoint: USAGE_EVALUATION_CHECKPOINT }, lag);
      },
    });
    new Counter({
      name: 'keyward_usage_evaluation_skips_total',
      help:
        'Minutes a behavioural detector could not evaluate and that were checkpointed without its ' +
        'signals, by detector (raise: the sightings could not be raised) and reason (timeout, failed)',
      labelNames: ['detector', 'reason'] as const,
      registers,
      async collect() {
        // The skips table holds the running totals; the counter is set to them, never added to.
        this.reset();
        for (const { detector, reason, minutes } of (await read())?.skips ?? []) {
          this.inc({ detector, reason }, minutes);
        }
      },
    });
  }

  /** Undefined when PostgreSQL cannot be read in time; the caller's scrape goes on without it. */
  private read(): Promise<UsageEvaluationStatus | undefined> {
    this.reading ??= withTimeout(
      readUsageEvaluationStatus(this.db, USAGE_EVALUATION_READ_TIMEOUT_MS),
      USAGE_EVALUATION_READ_TIMEOUT_MS,
    )
      .catch(() => undefined)
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }
}

/** The statement timeout cuts the queries; this cuts the wait for a pooled connection. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
