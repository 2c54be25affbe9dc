import type { Job, Queue } from 'bullmq';
import type { Clock } from '@keyward/core';
import type { Db } from '@keyward/db';
import type { EventStore } from '@keyward/event-store';
import { sweepHygiene, type RotationScheduler } from '@keyward/hygiene';
import { JOB, type DeliverWebhookJob } from '@keyward/jobs';
import { sweepExpiredKeys } from '@keyward/keys';
import { requeuePendingDeliveries } from '@keyward/webhooks';

/**
 * The scheduled sweeps, by job name. A retry, a second worker, or a run after a kill writes
 * nothing twice: each sweep decides from what is stored and appends against the versions it read.
 * (Verify needs no cache invalidation for expiry: it refuses an expired key by time already.)
 */
export function sweepsProcessor(
  db: Db,
  store: EventStore,
  clock: Clock,
  rotations: RotationScheduler,
  deliveries: Queue<DeliverWebhookJob>,
) {
  return async (job: Job): Promise<unknown> => {
    const correlationId = `sweep-${job.id ?? 'manual'}`;
    switch (job.name) {
      case JOB.sweepHygiene:
        return sweepHygiene(db, store, rotations, clock.now(), { correlationId });
      case JOB.requeueDeliveries:
        return { requeued: await requeuePendingDeliveries(db, deliveries, clock.now()) };
      default:
        return sweepExpiredKeys(db, store, clock.now(), { correlationId });
    }
  };
}
