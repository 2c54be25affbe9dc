import { sql } from 'kysely';
import type { Db } from '@keyward/db';
import { toRecordedEvent, type InlineProjection } from '@keyward/event-store';

export interface RebuildResult {
  projection: string;
  events: number;
}

const BATCH = 1000;

/**
 * Empties a projection's tables and replays every event through it in commit order, in one
 * transaction: readers keep seeing the old rows until it commits (TRUNCATE's lock makes them
 * wait rather than see empty tables), and appends that race it wait and then apply on top.
 */
export async function rebuildProjection(
  db: Db,
  projection: InlineProjection,
  onProgress?: (events: number) => void,
): Promise<RebuildResult> {
  return db.transaction().execute(async (trx) => {
    await sql`truncate ${sql.join(projection.tables.map((t) => sql.table(t)))}`.execute(trx);
    let after = { transactionId: '0', position: '0' };
    let events = 0;
    for (;;) {
      const rows = await trx
        .selectFrom('events')
        .selectAll()
        .where(
          sql<boolean>`(transaction_id, position) > (${after.transactionId}::xid8, ${after.position}::bigint)`,
        )
        .orderBy('transaction_id')
        .orderBy('position')
        .limit(BATCH)
        .execute();
      if (rows.length === 0) break;
      await projection.apply(trx, rows.map(toRecordedEvent));
      events += rows.length;
      const last = rows[rows.length - 1];
      after = { transactionId: last.transaction_id, position: last.position };
      onProgress?.(events);
    }
    return { projection: projection.name, events };
  });
}
