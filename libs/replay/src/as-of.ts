import type { StreamEvent } from './stream-event';

/**
 * A calendar date (midnight UTC) or a date and time with its zone. A time without a zone would be
 * read in the server's own zone, so it is refused rather than guessed.
 */
const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2})))?$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True for an instant of INSTANT's form that names a real day and time (no 30 February, no 24:00). */
export function isInstant(value: unknown): value is string {
  const match = typeof value === 'string' ? INSTANT.exec(value) : null;
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = match
    .slice(1)
    .map((part) => Number(part ?? 0));
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  return (
    days !== undefined &&
    day >= 1 &&
    day <= days &&
    hour < 24 &&
    minute < 60 &&
    second < 60 &&
    offsetHours < 24 &&
    offsetMinutes < 60 &&
    Number.isFinite(Date.parse(match[0]))
  );
}

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
