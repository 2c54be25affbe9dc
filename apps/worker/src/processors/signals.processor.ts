import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Clock } from '@keyward/core';
import type { Db } from '@keyward/db';
import type { EventStore } from '@keyward/event-store';
import { evaluateUsage, type UsageEvaluationResult } from '@keyward/signals';

/**
 * The abuse-signal evaluation over flushed usage. A retry, a second worker, or a run after a kill
 * evaluates no minute twice: the checkpoint moves in the same transaction as the signals, by
 * compare-and-set, so a run that finds it moved stops (see evaluateUsage). Detectors that could
 * not evaluate a minute are recorded (and counted on the API's /metrics); they are logged here too.
 */
export function signalsProcessor(db: Db, store: EventStore, clock: Clock, logger: Logger) {
  return async (job: Job): Promise<UsageEvaluationResult> => {
    const result = await evaluateUsage(db, store, clock.now(), {
      metadata: {
        actor: { type: 'system', id: 'usage-evaluation', name: 'usage evaluation' },
        reason: 'usage evaluation',
        correlationId: `usage-evaluation-${job.id ?? 'manual'}`,
      },
    });
    if (result.skipped.length > 0) {
      logger.warn(
        { queue: job.queueName, jobId: job.id, skipped: result.skipped },
        'usage evaluation skipped detectors that could not evaluate a minute; those signals are lost',
      );
    }
    return result;
  };
}
