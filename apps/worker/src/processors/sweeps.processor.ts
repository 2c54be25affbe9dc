import type { Job } from 'bullmq';
import type { Clock } from '@keyward/core';
import type { Db } from '@keyward/db';
import type { EventStore } from '@keyward/event-store';
import { sweepExpiredKeys, type ExpirySweepResult } from '@keyward/keys';

/**
 * The expiry sweep. A retry, a second worker, or a run after a kill writes nothing twice: keys
 * already expired decide nothing, and every append is checked against the version it read.
 * (Verify needs no cache invalidation for it: it refuses an expired key by time already.)
 */
export function sweepsProcessor(db: Db, store: EventStore, clock: Clock) {
  return async (job: Job): Promise<ExpirySweepResult> =>
    sweepExpiredKeys(db, store, clock.now(), { correlationId: `sweep-${job.id ?? 'manual'}` });
}
