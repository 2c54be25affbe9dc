import type { Job } from 'bullmq';
import type { Db } from '@keyward/db';
import type { RebuildProjectionJob } from '@keyward/jobs';
import { findProjection, rebuildProjection, type RebuildResult } from '@keyward/projections';

/**
 * Rebuilds one projection from the events: one tenant's rows, or every tenant's when the job
 * names none (the bootstrap token asked). Running it twice is harmless: a rebuild's result
 * depends only on the events, so a retry after a crash gives the same rows.
 */
export function projectionsProcessor(db: Db) {
  return async (job: Job<RebuildProjectionJob>): Promise<RebuildResult> => {
    const projection = findProjection(job.data.projection);
    return rebuildProjection(db, projection, (events) => void job.updateProgress({ events }), {
      tenantId: job.data.tenantId ?? undefined,
    });
  };
}
