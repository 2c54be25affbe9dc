import { SERVICE_ACCOUNT_STREAM, fold, type ServiceAccount } from '@keyward/accounts';
import { KEY_STREAM, foldKey, isLive, keyStatusAt, type Key, type KeyStatus } from '@keyward/keys';
import { streamsAsOf } from './as-of';
import { accountFacts, keyFacts } from './facts';
import type { StreamEvent } from './stream-event';

/** A key as it stood at a time, with the status it had then (expiry and grace need no event). */
export interface KeyAsOf {
  key: Key;
  status: KeyStatus;
}

/** An account and its keys as they stood at `asOf`, folded from their events alone. */
export interface AccountAsOf {
  account: ServiceAccount;
  keys: KeyAsOf[];
  /** Keys live (active or rotating) at `asOf`. */
  activeKeyCount: number;
  asOf: Date;
}

/**
 * Rebuilds the account `accountId` and its keys at `asOf` from the account's stream and its keys'
 * streams, with the aggregates' own folds. `events` may hold more (later events, other streams):
 * only what belongs to the account and had happened by `asOf` counts. Null before the account
 * was created.
 */
export function accountAsOf(
  events: readonly StreamEvent[],
  accountId: string,
  asOf: Date,
): AccountAsOf | null {
  const streams = streamsAsOf(events, asOf);
  const accountStream = streams.get(accountId);
  const account =
    accountStream?.[0].streamType === SERVICE_ACCOUNT_STREAM ? fold(accountFacts(accountStream)) : null;
  if (!account) return null;
  const keys: KeyAsOf[] = [];
  for (const stream of streams.values()) {
    if (stream[0].streamType !== KEY_STREAM) continue;
    const key = foldKey(keyFacts(stream));
    if (key && key.serviceAccountId === accountId) keys.push({ key, status: keyStatusAt(key, asOf) });
  }
  // The order the account's key list answers in: oldest first.
  keys.sort(
    (a, b) => a.key.createdAt.getTime() - b.key.createdAt.getTime() || (a.key.id < b.key.id ? -1 : 1),
  );
  return {
    account,
    keys,
    activeKeyCount: keys.filter(({ key }) => isLive(key, asOf)).length,
    asOf,
  };
}
