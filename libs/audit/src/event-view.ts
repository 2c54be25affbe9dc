import type { RecordedEvent } from '@keyward/event-store';

/**
 * An event as API.md "History and replay" shows it, in history pages, the feed and its NDJSON
 * export alike. Only what the contract names: never the hash fields or request metadata.
 */
export interface EventView {
  position: number;
  streamId: string;
  version: number;
  type: string;
  occurredAt: string;
  actor: { type: string; id: string; name: string };
  reason: string | null;
  correlationId: string;
  data: unknown;
}

/**
 * Positions are bigint in the database and numbers in answers, as stream versions (also bigint
 * there) already are: identity values stay far below 2^53, where a JSON number is exact.
 */
export function positionView(position: bigint): number {
  return Number(position);
}

export function eventView(event: RecordedEvent): EventView {
  const { actor, reason, correlationId } = event.metadata;
  return {
    position: positionView(event.position),
    streamId: event.streamId,
    version: event.streamVersion,
    type: event.type,
    occurredAt: event.occurredAt.toISOString(),
    // Named field by field, so whatever else a stored actor carries stays out of the answer.
    actor: { type: actor.type, id: actor.id, name: actor.name },
    reason: reason ?? null,
    correlationId,
    data: event.data,
  };
}

/** One line of the NDJSON export: the event's view and a newline. */
export function ndjsonLine(event: RecordedEvent): string {
  return `${JSON.stringify(eventView(event))}\n`;
}
