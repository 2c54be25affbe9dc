import type { Transaction } from 'kysely';
import type { Database } from '@keyward/db';

export type ActorType = 'bootstrap' | 'operator' | 'service-account' | 'system';

export interface Actor {
  type: ActorType;
  id: string;
  name: string;
}

/** Who caused a change and in which request; stored with every event the change appends. */
export interface EventMetadata {
  actor: Actor;
  reason: string | null;
  correlationId: string;
  causationId?: string | null;
  requestId?: string | null;
  sourceIp?: string | null;
}

/** An event a decision produced, before it is stored. */
export interface NewEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
  /** Version of the payload's shape; 1 unless an upcaster knows better. */
  schemaVersion?: number;
}

/** `number`: the version the stream must be at (0: the stream must not exist yet). */
export type ExpectedVersion = number | 'any';

/**
 * Events for one stream, at the version it must be at. With no events and a numeric expected
 * version it is a condition only: the stream must stay at that version until the append commits.
 */
export interface StreamAppend {
  tenantId: string;
  streamId: string;
  streamType: string;
  expectedVersion: ExpectedVersion;
  events: NewEvent[];
}

/** An event as inline projections see it inside the append's transaction (no position yet). */
export interface PendingEvent {
  eventId: string;
  tenantId: string;
  streamId: string;
  streamType: string;
  streamVersion: number;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: EventMetadata;
  occurredAt: Date;
}

export interface RecordedEvent extends PendingEvent {
  position: bigint;
  transactionId: bigint;
  chainSeq: bigint;
  prevHash: string;
  hash: string;
}

/**
 * A read model written in the append's transaction, so it is true the moment the API answers.
 * `apply` must be a pure function of the events: a rebuild replays them all through it.
 */
export interface InlineProjection {
  readonly name: string;
  /** The read-model tables it owns, emptied before a rebuild. */
  readonly tables: readonly (keyof Database)[];
  /**
   * The column naming each table's tenant where it is not `tenant_id`: a rebuild of one tenant
   * replaces the rows whose column holds that tenant.
   */
  readonly tenantColumns?: Readonly<Partial<Record<keyof Database, string>>>;
  apply(trx: Transaction<Database>, events: readonly PendingEvent[]): Promise<void>;
}

/** A place in the global feed: readers resume strictly after it. */
export interface FeedCheckpoint {
  transactionId: bigint;
  position: bigint;
}

export const FEED_START: FeedCheckpoint = { transactionId: 0n, position: 0n };
