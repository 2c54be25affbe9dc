import type { Job } from 'bullmq';
import type { Clock } from '@keyward/core';
import type { Db } from '@keyward/db';
import type { EventStore } from '@keyward/event-store';
import { evaluateUsage, type UsageEvaluationResult } from '@keyward/signals';

/**
 * The abuse-signal evaluation over flushed usage. A retry, a second worker, or a run after a kill
 * evaluates no minute twice: the checkpoint moves in the same transaction as the signals, by
 * compare-and-set, so a run that finds it moved stops (see evaluateUsage).
 */
export function signalsProcessor(db: Db, store: EventStore, clock: Clock) {
  return async (job: Job): Promise<UsageEvaluationResult> =>
    evaluateUsage(db, store, clock.now(), {
      metadata: {
        actor: { type: 'system', id: 'usage-evaluation', name: 'usage evaluation' },
        reason: 'usage evaluation',
        correlationId: `usage-evaluation-${job.id ?? 'manual'}`,
      },
    });
}
