import type { Db } from '@keyward/db';
import { flushUsage, type FlushResult, type UsageCounters } from '@keyward/usage';

/**
 * Moves usage counts from Redis to PostgreSQL. Idempotent by batch id (see flushUsage): a retry,
 * or two workers running it at once, never counts twice.
 */
export function usageProcessor(db: Db, counters: UsageCounters) {
  return async (): Promise<FlushResult> => flushUsage(db, counters);
}
