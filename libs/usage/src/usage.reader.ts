import { sql } from 'kysely';
import { ValidationFailed } from '@keyward/core';
import type { Db } from '@keyward/db';

export const GRANULARITIES = ['minute', 'hour', 'day'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

const STEP_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Buckets answered when `from` is left out: an hour of minutes, a day of hours, 30 days. */
const DEFAULT_BUCKETS: Record<Granularity, number> = { minute: 60, hour: 24, day: 30 };

/** One answer holds at most this many buckets (a day of minutes, two months of hours). */
export const MAX_BUCKETS = 1_440;

export interface UsageQuery {
  tenantId: string;
  serviceAccountId?: string;
  keyId?: string;
  /** Inclusive; its bucket is the first one. */
  from: Date;
  /** Exclusive. */
  to: Date;
  granularity: Granularity;
}

export interface UsageBucket {
  bucket: string;
  allowed: number;
  denied: number;
  deniedByCode: Record<string, number>;
}

/** The start of the UTC bucket holding `at`. */
export function bucketOf(at: Date, granularity: Granularity): Date {
  const step = STEP_MS[granularity];
  return new Date(Math.floor(at.getTime() / step) * step);
}

/**
 * The window of a request: `to` defaults to the end of the bucket holding `now` (so the bucket in
 * progress is included), `from` to a default number of buckets before `to`.
 */
export function usageWindow(
  now: Date,
  granularity: Granularity,
  from?: Date,
  to?: Date,
): { from: Date; to: Date } {
  const step = STEP_MS[granularity];
  const end = to ?? new Date(bucketOf(now, granularity).getTime() + step);
  return { from: from ?? new Date(end.getTime() - DEFAULT_BUCKETS[granularity] * step), to: end };
}

/**
 * Every bucket from the one holding `from` up to the one holding the last instant before `to`,
 * so a chart has no holes. Refuses a window that is empty or would need too many buckets.
 */
export function bucketsBetween(from: Date, to: Date, granularity: Granularity): Date[] {
  if (!(from.getTime() < to.getTime())) throw new ValidationFailed('from must be before to');
  const first = bucketOf(from, granularity).getTime();
  const last = bucketOf(new Date(to.getTime() - 1), granularity).getTime();
  const count = (last - first) / STEP_MS[granularity] + 1;
  if (count > MAX_BUCKETS) {
    throw new ValidationFailed(
      `from..to spans ${count} ${granularity} buckets; at most ${MAX_BUCKETS} per request (use a coarser granularity or a shorter window)`,
    );
  }
  return Array.from({ length: count }, (_, i) => new Date(first + i * STEP_MS[granularity]));
}

/** GET /v1/usage: counts per bucket from the flushed minutes, zeros where nothing happened. */
export class UsageReader {
  constructor(private readonly db: Db) {}

  async buckets(query: UsageQuery): Promise<UsageBucket[]> {
    const buckets = bucketsBetween(query.from, query.to, query.granularity);
    const rows = await this.db
      .selectFrom('usage_minutes')
      .select([
        sql<Date>`date_trunc(${query.granularity}, minute, 'UTC')`.as('bucket'),
        'code',
        sql<string>`sum(count)`.as('count'),
      ])
      .where('tenant_id', '=', query.tenantId)
      .where('minute', '>=', buckets[0])
      .where('minute', '<', query.to)
      .$if(query.serviceAccountId !== undefined, (q) =>
        q.where('service_account_id', '=', query.serviceAccountId!),
      )
      .$if(query.keyId !== undefined, (q) => q.where('key_id', '=', query.keyId!))
      .groupBy(['bucket', 'code'])
      .execute();

    const byBucket = new Map<number, UsageBucket>(
      buckets.map((bucket) => [
        bucket.getTime(),
        { bucket: bucket.toISOString(), allowed: 0, denied: 0, deniedByCode: {} },
      ]),
    );
    for (const row of rows) {
      const bucket = byBucket.get(new Date(row.bucket).getTime());
      if (!bucket) continue;
      const count = Number(row.count);
      if (row.code === 'ALLOWED') {
        bucket.allowed += count;
      } else {
        bucket.denied += count;
        bucket.deniedByCode[row.code] = (bucket.deniedByCode[row.code] ?? 0) + count;
      }
    }
    return [...byBucket.values()];
  }
}
