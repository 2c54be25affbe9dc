import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Clock } from '@keyward/core';
import type { Insertable } from 'kysely';
import type { Database, Db, EventRow, EventsTable } from '@keyward/db';
import { StreamVersionConflict } from './errors';
import { GENESIS_HASH, eventHash } from './hash-chain';
import type {
  EventMetadata,
  FeedCheckpoint,
  InlineProjection,
  PendingEvent,
  RecordedEvent,
  StreamAppend,
} from './types';

/** An after-commit effect (see EventStore.onCommitted). */
export type CommittedListener = (events: readonly RecordedEvent[]) => Promise<void> | void;

/**
 * The only source of truth. `append` writes events to one or more streams and runs the inline
 * projections, all in one transaction; readers get a stream, or the global feed in commit order.
 */
export class EventStore {
  private readonly committedListeners: CommittedListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly projections: readonly InlineProjection[],
    private readonly clock: Clock,
  ) {}

  /**
   * Calls `listener` after every append that commits, before `append` returns, so an effect such
   * as a cache invalidation has been sent when the caller answers. The events are already stored:
   * a listener's failure is its own to report and never fails the append. Returns an unsubscribe.
   */
  onCommitted(listener: CommittedListener): () => void {
    this.committedListeners.push(listener);
    return () => {
      const index = this.committedListeners.indexOf(listener);
      if (index >= 0) this.committedListeners.splice(index, 1);
    };
  }

  /**
   * Appends to every stream in `appends` atomically, each checked against its expected version.
   * On a version mismatch throws StreamVersionConflict and appends nothing.
   */
  /**
   * `guard`, when given, runs inside the transaction after every stream version is claimed (and
   * each condition's row locked): a rule over several rows, such as a count of an account's live
   * keys, is checked there against committed data that cannot change until this commits.
   */
  async append(
    appends: readonly StreamAppend[],
    metadata: EventMetadata,
    guard?: (trx: Transaction<Database>) => Promise<void>,
  ): Promise<RecordedEvent[]> {
    // An empty append with an expected version is a condition: that stream must stay at that
    // version until this commits (a key is issued against the account version it was checked on).
    const relevant = appends.filter((a) => a.events.length > 0 || a.expectedVersion !== 'any');
    if (!relevant.some((a) => a.events.length > 0)) return [];
    const recorded = await this.db
      .transaction()
      .execute((trx) => this.appendIn(trx, relevant, metadata, guard));
    for (const listener of this.committedListeners) {
      await Promise.resolve()
        .then(() => listener(recorded))
        .catch(() => undefined);
    }
    return recorded;
  }

  private async appendIn(
    trx: Transaction<Database>,
    appends: readonly StreamAppend[],
    metadata: EventMetadata,
    guard?: (trx: Transaction<Database>) => Promise<void>,
  ): Promise<RecordedEvent[]> {
    const occurredAt = this.clock.now();
    const pending: PendingEvent[] = [];
    // A fixed order of row locks across transactions keeps two multi-stream appends from deadlocking.
    const ordered = [...appends].sort((a, b) =>
      a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : 0,
    );
    const claimed = await this.claimExistingStreams(trx, ordered);
    for (const append of ordered) {
      const from = claimed.get(append.streamId) ?? (await this.claimVersions(trx, append));
      append.events.forEach((event, i) =>
        pending.push({
          eventId: randomUUID(),
          tenantId: append.tenantId,
          streamId: append.streamId,
          streamType: append.streamType,
          streamVersion: from + i + 1,
          type: event.type,
          schemaVersion: event.schemaVersion ?? 1,
          data: event.data,
          metadata,
          occurredAt,
        }),
      );
    }
    if (guard) await guard(trx);
    // Keep the caller's order of events across streams (the order the decision produced them).
    const order = new Map(appends.map((a, i) => [a.streamId, i]));
    pending.sort(
      (a, b) => order.get(a.streamId)! - order.get(b.streamId)! || a.streamVersion - b.streamVersion,
    );

    for (const projection of this.projections) await projection.apply(trx, pending);

    // Last, so the per-tenant chain head is locked as briefly as possible.
    return this.insertChained(trx, pending);
  }

  /**
   * The set-based claim, for an append of many existing streams each at a known version (a sweep
   * expiring a thousand keys): two statements instead of one per stream. The rows are locked in
   * stream order first, as the one-by-one path locks them, so the two paths cannot deadlock each
   * other. Used only when every stream of the append is of that kind; answers the version each
   * stream was at, or an empty map when the append is not of that kind.
   */
  private async claimExistingStreams(
    trx: Transaction<Database>,
    ordered: readonly StreamAppend[],
  ): Promise<Map<string, number>> {
    const claims = new Map<string, number>();
    if (ordered.length > 1 && ordered.every((a) => a.expectedVersion === 0 && a.events.length > 0)) {
      return this.claimNewStreams(trx, ordered);
    }
    const batched =
      ordered.length > 1 &&
      ordered.every(
        (a) => typeof a.expectedVersion === 'number' && a.expectedVersion > 0 && a.events.length > 0,
      );
    if (!batched) return claims;
    const ids = ordered.map((a) => a.streamId);
    const rows = await trx
      .selectFrom('streams')
      .select(['stream_id', 'version'])
      .where('stream_id', 'in', ids)
      .orderBy('stream_id')
      .forUpdate()
      .execute();
    const actual = new Map(rows.map((r) => [r.stream_id, Number(r.version)]));
    for (const append of ordered) {
      const expected = append.expectedVersion as number;
      const version = actual.get(append.streamId) ?? 0;
      if (version !== expected) throw new StreamVersionConflict(append.streamId, expected, version);
      claims.set(append.streamId, expected);
    }
    await sql`
      update streams s set version = x.version
      from unnest(${ids}::text[], ${ordered.map((a) => String((a.expectedVersion as number) + a.events.length))}::bigint[])
        as x(stream_id, version)
      where s.stream_id = x.stream_id`.execute(trx);
    return claims;
  }

  /**
   * The set-based claim of many new streams (a sweep raising a thousand signals): one insert of
   * every stream row, in stream order as the one-by-one path inserts them. A stream that exists
   * already is not inserted, and the append conflicts on it.
   */
  private async claimNewStreams(
    trx: Transaction<Database>,
    ordered: readonly StreamAppend[],
  ): Promise<Map<string, number>> {
    const inserted = await trx
      .insertInto('streams')
      .values(
        ordered.map((a) => ({
          stream_id: a.streamId,
          tenant_id: a.tenantId,
          stream_type: a.streamType,
          version: a.events.length,
        })),
      )
      .onConflict((oc) => oc.column('stream_id').doNothing())
      .returning('stream_id')
      .execute();
    if (inserted.length !== ordered.length) {
      const claimed = new Set(inserted.map((r) => r.stream_id));
      const taken = ordered.find((a) => !claimed.has(a.streamId))!;
      throw new StreamVersionConflict(taken.streamId, 0, await this.streamVersion(taken.streamId, trx));
    }
    return new Map(ordered.map((a) => [a.streamId, 0]));
  }

  /** Moves the stream row from the expected version to the new one; returns the version it was at. */
  private async claimVersions(trx: Transaction<Database>, append: StreamAppend): Promise<number> {
    const count = append.events.length;
    if (count === 0) return this.holdVersion(trx, append);
    if (append.expectedVersion === 'any') {
      const row = await trx
        .insertInto('streams')
        .values({
          stream_id: append.streamId,
          tenant_id: append.tenantId,
          stream_type: append.streamType,
          version: count,
        })
        .onConflict((oc) => oc.column('stream_id').doUpdateSet({ version: sql`streams.version + ${count}` }))
        .returning('version')
        .executeTakeFirstOrThrow();
      return Number(row.version) - count;
    }
    const expected = append.expectedVersion;
    const claimed =
      expected === 0
        ? await trx
            .insertInto('streams')
            .values({
              stream_id: append.streamId,
              tenant_id: append.tenantId,
              stream_type: append.streamType,
              version: count,
            })
            .onConflict((oc) => oc.column('stream_id').doNothing())
            .returning('version')
            .executeTakeFirst()
        : await trx
            .updateTable('streams')
            .set({ version: expected + count })
            .where('stream_id', '=', append.streamId)
            .where('version', '=', String(expected))
            .returning('version')
            .executeTakeFirst();
    if (!claimed) {
      const actual = await this.streamVersion(append.streamId, trx);
      throw new StreamVersionConflict(append.streamId, expected, actual);
    }
    return expected;
  }

  /**
   * Checks a stream is at its expected version and locks its row until commit: an append to that
   * stream waits and then conflicts, and two decisions on the same condition run one after the
   * other (so a guard's count is never read by both before either commits).
   */
  private async holdVersion(trx: Transaction<Database>, append: StreamAppend): Promise<number> {
    const row = await trx
      .selectFrom('streams')
      .select('version')
      .where('stream_id', '=', append.streamId)
      .forUpdate()
      .executeTakeFirst();
    const actual = row ? Number(row.version) : 0;
    if (actual !== append.expectedVersion) {
      throw new StreamVersionConflict(append.streamId, append.expectedVersion as number, actual);
    }
    return actual;
  }

  private async insertChained(trx: Transaction<Database>, pending: PendingEvent[]): Promise<RecordedEvent[]> {
    const tenants = [...new Set(pending.map((e) => e.tenantId))].sort();
    const rows: Insertable<EventsTable>[] = [];
    const linked: Omit<RecordedEvent, 'position' | 'transactionId'>[] = [];
    for (const tenantId of tenants) {
      // The tenant's chain head row is the one lock appends of one tenant share; other tenants'
      // appends never wait on it.
      await trx
        .insertInto('chain_heads')
        .values({ tenant_id: tenantId, seq: 0, hash: GENESIS_HASH })
        .onConflict((oc) => oc.column('tenant_id').doNothing())
        .execute();
      const head = await trx
        .selectFrom('chain_heads')
        .select(['seq', 'hash'])
        .where('tenant_id', '=', tenantId)
        .forUpdate()
        .executeTakeFirstOrThrow();
      let seq = BigInt(head.seq);
      let prevHash = head.hash;
      for (const event of pending.filter((e) => e.tenantId === tenantId)) {
        seq += 1n;
        const hash = eventHash(event, seq, prevHash);
        linked.push({ ...event, chainSeq: seq, prevHash, hash });
        rows.push({
          tenant_id: event.tenantId,
          stream_id: event.streamId,
          stream_type: event.streamType,
          stream_version: event.streamVersion,
          event_id: event.eventId,
          type: event.type,
          schema_version: event.schemaVersion,
          data: JSON.stringify(event.data),
          metadata: JSON.stringify(event.metadata),
          occurred_at: event.occurredAt,
          chain_seq: seq.toString(),
          prev_hash: prevHash,
          hash,
        });
        prevHash = hash;
      }
      await trx
        .updateTable('chain_heads')
        .set({ seq: seq.toString(), hash: prevHash })
        .where('tenant_id', '=', tenantId)
        .execute();
    }
    const inserted = await trx
      .insertInto('events')
      .values(rows)
      .returning(['event_id', 'position', 'transaction_id'])
      .execute();
    const byId = new Map(inserted.map((r) => [r.event_id, r]));
    return linked.map((event) => {
      const row = byId.get(event.eventId)!;
      return { ...event, position: BigInt(row.position), transactionId: BigInt(row.transaction_id) };
    });
  }

  /** The stream's current version; 0 when it does not exist. */
  async streamVersion(streamId: string, executor: Db | Transaction<Database> = this.db): Promise<number> {
    const row = await executor
      .selectFrom('streams')
      .select('version')
      .where('stream_id', '=', streamId)
      .executeTakeFirst();
    return row ? Number(row.version) : 0;
  }

  /** A stream's events, oldest first, optionally only those up to a time (as-of replay). */
  async readStream(streamId: string, options: { until?: Date } = {}): Promise<RecordedEvent[]> {
    let query = this.db.selectFrom('events').selectAll().where('stream_id', '=', streamId);
    if (options.until) query = query.where('occurred_at', '<=', options.until);
    const rows = await query.orderBy('stream_version').execute();
    return rows.map(toRecordedEvent);
  }

  /**
   * The next events of the global feed after `after`, in commit order. Only transactions older
   * than every one still running are returned, so a later reader never finds an event appearing
   * behind its checkpoint.
   */
  async readFeed(
    after: FeedCheckpoint,
    options: { limit?: number; tenantId?: string } = {},
  ): Promise<RecordedEvent[]> {
    let query = this.db
      .selectFrom('events')
      .selectAll()
      .where(
        sql<boolean>`(transaction_id, position) > (${after.transactionId.toString()}::xid8, ${after.position.toString()}::bigint)`,
      )
      .where(sql<boolean>`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`);
    if (options.tenantId !== undefined) query = query.where('tenant_id', '=', options.tenantId);
    const rows = await query
      .orderBy('transaction_id')
      .orderBy('position')
      .limit(options.limit ?? 500)
      .execute();
    return rows.map(toRecordedEvent);
  }
}

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    position: BigInt(row.position),
    transactionId: BigInt(row.transaction_id),
    eventId: row.event_id,
    tenantId: row.tenant_id,
    streamId: row.stream_id,
    streamType: row.stream_type,
    streamVersion: Number(row.stream_version),
    type: row.type,
    schemaVersion: row.schema_version,
    data: row.data,
    metadata: row.metadata as EventMetadata,
    occurredAt: row.occurred_at,
    chainSeq: BigInt(row.chain_seq),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export function checkpointOf(event: RecordedEvent): FeedCheckpoint {
  return { transactionId: event.transactionId, position: event.position };
}
