import type { Job } from 'bullmq';
import type { Clock } from '@keyward/core';
import type { Db } from '@keyward/db';
import type { EventStore } from '@keyward/event-store';
import {
  rotateWithDelivery,
  rotationJobFailed,
  type ScheduledRotationOutcome,
  type SecretDeliverySettings,
} from '@keyward/hygiene';
import type { RotateKeyJob } from '@keyward/jobs';

/**
 * One scheduled rotation with secret delivery; the whole of it happens in this one run. A run
 * that throws is retried by BullMQ; the last attempt's failure is the account's to know about,
 * so it raises ROTATION_FAILED before the job is given up (issue 5 point 7).
 */
export function rotationsProcessor(
  db: Db,
  store: EventStore,
  clock: Clock,
  settings: SecretDeliverySettings,
) {
  return async (job: Job<RotateKeyJob>): Promise<ScheduledRotationOutcome> => {
    const correlationId = `rotation-${job.id ?? 'manual'}`;
    try {
      return await rotateWithDelivery(db, store, job.data, clock, settings, correlationId);
    } catch (error) {
      const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const message = error instanceof Error ? error.message : String(error);
      // Best effort: what failed the job (the database away) may fail this too; the job's own
      // failure is still logged and counted on /metrics.
      if (final) await rotationJobFailed(db, store, job.data, message, correlationId).catch(() => undefined);
      throw error;
    }
  };
}
