import type { StreamEvent } from './stream-event';

/**
 * The moment a replay answers for. A time after now is read as now: no event after now exists, so
 * a later state could differ from now's only by keys expiring on schedule, and that would be a
 * forecast, not history. The answer names the time it stands for, so the caller sees the change.
 */
export function resolveAsOf(requested: Date | undefined, now: Date): Date {
  if (!requested || requested.getTime() > now.getTime()) return now;
  return requested;
}

/**
 * Each stream's events as they stood at `asOf`, oldest first, keyed by stream id. A stream stands
 * at the longest run of its versions 1, 2, 3... that all occurred by then: were one server's clock
 * behind another's, a later version stamped earlier would otherwise be folded without the one
 * before it. Streams with nothing yet at `asOf` are left out.
 */
export function streamsAsOf<E extends StreamEvent>(events: readonly E[], asOf: Date): Map<string, E[]> {
  const byStream = new Map<string, E[]>();
  for (const event of events) {
    const stream = byStream.get(event.streamId);
    if (stream) stream.push(event);
    else byStream.set(event.streamId, [event]);
  }
  const cutoff = asOf.getTime();
  const streams = new Map<string, E[]>();
  for (const [streamId, stream] of byStream) {
    stream.sort((a, b) => a.streamVersion - b.streamVersion);
    let length = 0;
    while (
      length < stream.length &&
      stream[length].streamVersion === length + 1 &&
      stream[length].occurredAt.getTime() <= cutoff
    ) {
      length += 1;
    }
    if (length > 0) streams.set(streamId, length === stream.length ? stream : stream.slice(0, length));
  }
  return streams;
}
