import { ValidationFailed } from './errors';
import { OPAQUE_ID } from './ids';

/** A keyset cursor over (createdAt, id): opaque to callers, checked when it comes back. */
export interface Cursor {
  createdAt: string;
  id: string;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

export function decodeCursor(text: string): Cursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    const [createdAt, id] = Array.isArray(parsed) && parsed.length === 2 ? (parsed as unknown[]) : [];
    // Only the exact ISO form encodeCursor writes: Date.parse alone accepts '1' or 'March 7',
    // which PostgreSQL would then refuse as a timestamptz (a 500 instead of a 400).
    if (
      typeof createdAt === 'string' &&
      typeof id === 'string' &&
      isIsoInstant(createdAt) &&
      // Every list is keyed by one of our opaque ids; anything else (a NUL byte) must not reach SQL.
      OPAQUE_ID.test(id)
    ) {
      return { createdAt, id };
    }
  } catch {
    // fall through
  }
  throw new ValidationFailed('the cursor is not valid', [
    { field: 'cursor', message: 'is not a cursor this API returned' },
  ]);
}

function isIsoInstant(text: string): boolean {
  const time = Date.parse(text);
  return !Number.isNaN(time) && new Date(time).toISOString() === text;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Fetch `limit + 1` rows; this turns them into a page and the cursor after its last item. */
export function toPage<T extends { createdAt: Date; id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor:
      rows.length > limit && last
        ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id })
        : null,
  };
}
