import { SERVICE_ACCOUNT_STREAM, isServiceAccountEvent, type ServiceAccountFact } from '@keyward/accounts';
import { KEY_STREAM, isKeyEvent, type KeyFact } from '@keyward/keys';
import type { StreamEvent } from './stream-event';

/**
 * Stored events as the aggregates' folds take them. Only the aggregate's own event types are
 * passed on, as the inline projections do, so a replayed state and its read-model row agree.
 */
export function accountFact(event: StreamEvent): ServiceAccountFact | null {
  if (event.streamType !== SERVICE_ACCOUNT_STREAM || !isServiceAccountEvent(event)) return null;
  return { type: event.type, data: event.data, occurredAt: event.occurredAt } as ServiceAccountFact;
}

export function keyFact(event: StreamEvent): KeyFact | null {
  if (event.streamType !== KEY_STREAM || !isKeyEvent(event)) return null;
  return { type: event.type, data: event.data, occurredAt: event.occurredAt } as KeyFact;
}

export function accountFacts(stream: readonly StreamEvent[]): ServiceAccountFact[] {
  return stream.flatMap((event) => accountFact(event) ?? []);
}

export function keyFacts(stream: readonly StreamEvent[]): KeyFact[] {
  return stream.flatMap((event) => keyFact(event) ?? []);
}
