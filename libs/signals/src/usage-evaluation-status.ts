import { sql } from 'kysely';
import type { Db } from '@keyward/db';
import { USAGE_EVALUATION_CHECKPOINT } from './usage-evaluation';

/** Where the usage evaluation stands, for an operator (the API's /metrics). */
export interface UsageEvaluationStatus {
  /** The start of the last minute evaluated in full; null before the first run. */
  lastMinute: Date | null;
  /** Detector-minutes skipped since the evaluation began, by detector and reason. */
  skips: { detector: string; reason: string; minutes: number }[];
}

/**
 * The checkpoint and the skips recorded so far, in one read-only transaction whose statements
 * are cut at `timeoutMs`: a scrape must answer even when the database is slow.
 */
export async function readUsageEvaluationStatus(db: Db, timeoutMs: number): Promise<UsageEvaluationStatus> {
  return db.transaction().execute(async (trx) => {
    await sql`set transaction read only`.execute(trx);
    await sql`select set_config('statement_timeout', ${String(timeoutMs)}, true)`.execute(trx);
    const checkpoint = await trx
      .selectFrom('usage_evaluation_checkpoints')
      .select('last_minute')
      .where('name', '=', USAGE_EVALUATION_CHECKPOINT)
      .executeTakeFirst();
    const skips = await trx
      .selectFrom('usage_evaluation_skips')
      .select(['detector', 'reason', (eb) => eb.fn.countAll<string>().as('minutes')])
      .groupBy(['detector', 'reason'])
      .orderBy('detector')
      .orderBy('reason')
      .execute();
    return {
      lastMinute: checkpoint?.last_minute ?? null,
      skips: skips.map((s) => ({ detector: s.detector, reason: s.reason, minutes: Number(s.minutes) })),
    };
  });
}
