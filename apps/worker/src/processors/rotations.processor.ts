import type { Job } from 'bullmq';
import type { Clock } from '@keyward/core';
import type { Db } from '@keyward/db';
import type { EventStore } from '@keyward/event-store';
import {
  rotateWithDelivery,
  type ScheduledRotationOutcome,
  type SecretDeliverySettings,
} from '@keyward/hygiene';
import type { RotateKeyJob } from '@keyward/jobs';

/** One scheduled rotation with secret delivery; the whole of it happens in this one run. */
export function rotationsProcessor(
  db: Db,
  store: EventStore,
  clock: Clock,
  settings: SecretDeliverySettings,
) {
  return async (job: Job<RotateKeyJob>): Promise<ScheduledRotationOutcome> =>
    rotateWithDelivery(db, store, job.data, clock, settings, `rotation-${job.id ?? 'manual'}`);
}
