import { ValidationFailed } from '@keyward/core';
import type { FeedCheckpoint } from '@keyward/event-store';

/**
 * Opaque cursors of the history and feed lists. Each names its list, so a feed cursor handed to a
 * history list (or an edited one) is a 400, and every number is range-checked before it reaches
 * SQL as a bigint or xid8.
 */

const HISTORY = 'history';
const FEED = 'feed';
const DIGITS = /^(0|[1-9]\d{0,19})$/;
const MAX_BIGINT = 2n ** 63n - 1n;
const MAX_XID8 = 2n ** 64n - 1n;

function invalidCursor(): ValidationFailed {
  return new ValidationFailed('the cursor is not valid', [
    { field: 'cursor', message: 'is not a cursor this API returned' },
  ]);
}

function encode(parts: string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

/** The cursor's parts after its list name, or a 400 when it is not one this list wrote. */
function decode(text: string, list: string, count: number): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== count + 1 ||
    parsed[0] !== list ||
    !parsed.every((part) => typeof part === 'string')
  ) {
    throw invalidCursor();
  }
  return (parsed as string[]).slice(1);
}

function unsigned(text: string, max: bigint): bigint {
  if (!DIGITS.test(text)) throw invalidCursor();
  const value = BigInt(text);
  if (value > max) throw invalidCursor();
  return value;
}

/** After the history event with this stream version. */
export function encodeHistoryCursor(version: number): string {
  return encode([HISTORY, String(version)]);
}

export function decodeHistoryCursor(text: string): number {
  const [version] = decode(text, HISTORY, 1);
  return Number(unsigned(version, BigInt(Number.MAX_SAFE_INTEGER)));
}

/** After this place in the feed's commit order. */
export function encodeFeedCursor(checkpoint: FeedCheckpoint): string {
  return encode([FEED, checkpoint.transactionId.toString(), checkpoint.position.toString()]);
}

export function decodeFeedCursor(text: string): FeedCheckpoint {
  const [transactionId, position] = decode(text, FEED, 2);
  return { transactionId: unsigned(transactionId, MAX_XID8), position: unsigned(position, MAX_BIGINT) };
}
