import { ID_PREFIX, isId, type Page } from '@keyward/core';
import type { Db } from '@keyward/db';
import { toRecordedEvent, type RecordedEvent } from '@keyward/event-store';
import { KEY_STREAM, SERVICE_ACCOUNT_STREAM } from '@keyward/keys';
import { decodeHistoryCursor, encodeHistoryCursor } from './cursors';

/**
 * The events of one account's or one key's stream, oldest first, a page at a time. Read from the
 * stream rows, not the read models, so a deleted account keeps its history.
 */
export class HistoryReader {
  constructor(private readonly db: Db) {}

  /** Undefined when the tenant has no such account: another tenant's is as absent as a missing one. */
  accountHistory(
    tenantId: string,
    accountId: string,
    limit: number,
    cursor?: string,
  ): Promise<Page<RecordedEvent> | undefined> {
    return this.read(tenantId, SERVICE_ACCOUNT_STREAM, ID_PREFIX.serviceAccount, accountId, limit, cursor);
  }

  /** Undefined when the tenant has no such key. */
  keyHistory(
    tenantId: string,
    keyId: string,
    limit: number,
    cursor?: string,
  ): Promise<Page<RecordedEvent> | undefined> {
    return this.read(tenantId, KEY_STREAM, ID_PREFIX.key, keyId, limit, cursor);
  }

  private async read(
    tenantId: string,
    streamType: string,
    idPrefix: string,
    streamId: string,
    limit: number,
    cursor?: string,
  ): Promise<Page<RecordedEvent> | undefined> {
    const afterVersion = cursor === undefined ? 0 : decodeHistoryCursor(cursor);
    if (!isId(streamId, idPrefix)) return undefined;
    const stream = await this.db
      .selectFrom('streams')
      .select('stream_id')
      .where('stream_id', '=', streamId)
      .where('tenant_id', '=', tenantId)
      // An account id asked for as a key (or the reverse) is not found either.
      .where('stream_type', '=', streamType)
      .executeTakeFirst();
    if (!stream) return undefined;
    const rows = await this.db
      .selectFrom('events')
      .selectAll()
      .where('stream_id', '=', streamId)
      .where('tenant_id', '=', tenantId)
      .where('stream_version', '>', String(afterVersion))
      .orderBy('stream_version')
      .limit(limit + 1)
      .execute();
    const items = rows.slice(0, limit).map(toRecordedEvent);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rows.length > limit && last ? encodeHistoryCursor(last.streamVersion) : null,
    };
  }
}
