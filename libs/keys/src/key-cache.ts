import { InvalidatedCache } from '@keyward/core';
import { OPERATOR_STREAM } from '@keyward/tenants';
import { KEY_STREAM, SERVICE_ACCOUNT_STREAM } from './key.events';
import type { KeyRecord } from './verify';

/**
 * What a committed change makes stale: keys by id, every key of the named accounts, and the
 * named operators' credentials (the auth guard caches them the same way).
 */
export interface KeyInvalidation {
  keys: string[];
  accounts: string[];
  operators: string[];
}

/** A cache kept honest by invalidations: what KeyInvalidations drives. */
export interface InvalidationTarget {
  invalidate(invalidation: KeyInvalidation): void;
  enable(): void;
  disable(): void;
  clear(): void;
}

/**
 * The invalidation a batch of committed events calls for, or null. Any event on a key, account
 * or operator stream may change what verify or the auth guard answers (revocation, rotation, narrowing, disable,
 * boundaries, CIDRs, deletion), so the rule is by stream, not by event type: a new event type
 * cannot be forgotten here.
 */
export function invalidationFor(
  events: readonly { streamType: string; streamId: string }[],
): KeyInvalidation | null {
  const keys = new Set<string>();
  const accounts = new Set<string>();
  const operators = new Set<string>();
  for (const event of events) {
    if (event.streamType === KEY_STREAM) keys.add(event.streamId);
    else if (event.streamType === SERVICE_ACCOUNT_STREAM) accounts.add(event.streamId);
    else if (event.streamType === OPERATOR_STREAM) operators.add(event.streamId);
  }
  return keys.size || accounts.size || operators.size
    ? { keys: [...keys], accounts: [...accounts], operators: [...operators] }
    : null;
}

/**
 * The verify path's cache of key records by key id, and of ids that match no key (`null`), so a
 * flood of unknown keys does not reach PostgreSQL each time. A change to an account drops every
 * key of it: the record carries the account's status, boundaries and CIDRs.
 */
export class KeyCache extends InvalidatedCache<KeyRecord | null> implements InvalidationTarget {
  invalidate(invalidation: KeyInvalidation): void {
    if (invalidation.accounts.length === 0) return this.drop(invalidation.keys);
    const accounts = new Set(invalidation.accounts);
    this.drop(invalidation.keys, (record) => record !== null && accounts.has(record.account.id));
  }
}
