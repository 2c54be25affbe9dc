import { sql } from 'kysely';
import { ValidationFailed, type Page } from '@keyward/core';
import type { Db } from '@keyward/db';
import {
  FEED_START,
  checkpointOf,
  toRecordedEvent,
  type FeedCheckpoint,
  type RecordedEvent,
} from '@keyward/event-store';
import { decodeFeedCursor, encodeFeedCursor } from './cursors';

export interface FeedFilter {
  /** Only events of these types; every type when absent or empty. */
  types?: readonly string[];
  correlationId?: string;
}

/** Where a read of the feed starts: a cursor this feed answered, or `after=<position>`. */
export interface FeedStart {
  cursor?: string;
  after?: bigint;
}

/** Events per query of the export. */
const EXPORT_BATCH = 500;

/**
 * One tenant's events in commit order, for export and SIEM: the order and visibility rule of
 * EventStore.readFeed, with filters, pages and a streaming export on top.
 */
export class EventFeed {
  constructor(private readonly db: Db) {}

  /**
   * The checkpoint a read continues strictly after. A cursor continues a listing and wins over
   * `after`, which a client following `nextCursor` may still be repeating from its first request.
   * `after` names an event by position, but the feed is ordered by (transaction, position), so
   * the event's transaction is looked up: a later position can commit, and so come, first.
   */
  async start(tenantId: string, start: FeedStart): Promise<FeedCheckpoint> {
    if (start.cursor !== undefined) return decodeFeedCursor(start.cursor);
    if (start.after === undefined || start.after === 0n) return FEED_START;
    const row = await this.db
      .selectFrom('events')
      .select('transaction_id')
      .where('tenant_id', '=', tenantId)
      .where('position', '=', start.after.toString())
      .executeTakeFirst();
    if (!row) {
      throw new ValidationFailed('after names no event of this tenant', [
        { field: 'after', message: 'is not the position of an event of this tenant' },
      ]);
    }
    return { transactionId: BigInt(row.transaction_id), position: start.after };
  }

  /** Up to `limit` events after `from`; `nextCursor` is null when no more are visible yet. */
  async page(
    tenantId: string,
    from: FeedCheckpoint,
    filter: FeedFilter,
    limit: number,
  ): Promise<Page<RecordedEvent>> {
    const rows = await this.query(tenantId, from, filter)
      .limit(limit + 1)
      .execute();
    const items = rows.slice(0, limit).map(toRecordedEvent);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeFeedCursor(checkpointOf(last)) : null };
  }

  /**
   * Every event after `from` that was visible when the export began, in commit order, one batch
   * of rows at a time: memory stays flat however long the history is, and the next batch is read
   * only when the caller has taken the last, so a slow client sets the pace.
   *
   * Each batch is its own keyset query rather than a read from one open database cursor: a
   * cursor would hold a pooled connection for as long as the slowest client takes to download
   * (a few slow exports would starve the API), and pg-cursor's close never returns once its
   * connection has died, which would leave the request hanging instead of failing.
   */
  async *stream(tenantId: string, from: FeedCheckpoint, filter: FeedFilter): AsyncGenerator<RecordedEvent> {
    // Every transaction below this horizon had ended when the export began: bounded by it, the
    // export is the feed as it stood then, and appends committing meanwhile cannot make it endless.
    const { rows } = await sql<{ horizon: string }>`
      select pg_snapshot_xmin(pg_current_snapshot())::text as horizon`.execute(this.db);
    const horizon = rows[0].horizon;
    let after = from;
    for (;;) {
      const batch = await this.query(tenantId, after, filter, horizon).limit(EXPORT_BATCH).execute();
      for (const row of batch) yield toRecordedEvent(row);
      const last = batch[batch.length - 1];
      if (batch.length < EXPORT_BATCH || !last) return;
      after = { transactionId: BigInt(last.transaction_id), position: BigInt(last.position) };
    }
  }

  /** `horizon`: a transaction id every visible event is below; the current one when absent. */
  private query(tenantId: string, from: FeedCheckpoint, filter: FeedFilter, horizon?: string) {
    let query = this.db
      .selectFrom('events')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where(
        sql<boolean>`(transaction_id, position) > (${from.transactionId.toString()}::xid8, ${from.position.toString()}::bigint)`,
      )
      // Only transactions older than every one still running: an event that commits later can
      // never land behind a checkpoint a reader already holds.
      .where(
        horizon === undefined
          ? sql<boolean>`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
          : sql<boolean>`transaction_id < ${horizon}::xid8`,
      );
    if (filter.types && filter.types.length > 0) query = query.where('type', 'in', filter.types);
    if (filter.correlationId !== undefined) {
      query = query.where(sql<boolean>`metadata->>'correlationId' = ${filter.correlationId}`);
    }
    return query.orderBy('transaction_id').orderBy('position');
  }
}
