import type { Clock } from '@keyward/core';
import { KEY_STREAM, SERVICE_ACCOUNT_STREAM } from './key.events';
import type { KeyRecord } from './verify';

/** What a committed change makes stale: keys by id, and every key of the named accounts. */
export interface KeyInvalidation {
  keys: string[];
  accounts: string[];
}

/**
 * The invalidation a batch of committed events calls for, or null. Any event on a key stream or
 * an account stream may change what verify answers (revocation, rotation, narrowing, disable,
 * boundaries, CIDRs, deletion), so the rule is by stream, not by event type: a new event type
 * cannot be forgotten here.
 */
export function invalidationFor(
  events: readonly { streamType: string; streamId: string }[],
): KeyInvalidation | null {
  const keys = new Set<string>();
  const accounts = new Set<string>();
  for (const event of events) {
    if (event.streamType === KEY_STREAM) keys.add(event.streamId);
    else if (event.streamType === SERVICE_ACCOUNT_STREAM) accounts.add(event.streamId);
  }
  return keys.size || accounts.size ? { keys: [...keys], accounts: [...accounts] } : null;
}

export interface KeyCacheOptions {
  /** How long an entry is trusted without any message: the bound on a lost invalidation. */
  ttlMs: number;
  maxEntries: number;
}

interface Entry {
  record: KeyRecord | null;
  until: number;
}

/**
 * The verify path's in-process cache of key records (and of ids that match no key, so a flood
 * of unknown keys does not reach PostgreSQL each time). It is trusted only while its owner says
 * invalidations can reach it (`enabled`); an entry also dies after `ttlMs` on its own.
 *
 * A lookup that was in flight while an invalidation arrived may carry the state from before the
 * change, so its result is answered but not kept: every invalidation bumps `generation`, and a
 * load whose generation moved on is not stored.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;
  private enabled = false;

  constructor(
    private readonly clock: Clock,
    private readonly options: KeyCacheOptions,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The record for `keyId` from the cache, or from `load` (kept when nothing changed meanwhile). */
  async get(keyId: string, load: () => Promise<KeyRecord | null>): Promise<KeyRecord | null> {
    if (!this.enabled) return load();
    const now = this.clock.now().getTime();
    const hit = this.entries.get(keyId);
    if (hit && hit.until > now) return hit.record;
    if (hit) this.entries.delete(keyId);
    const generation = this.generation;
    const record = await load();
    if (this.enabled && generation === this.generation) this.store(keyId, record, now);
    return record;
  }

  invalidate(invalidation: KeyInvalidation): void {
    this.generation++;
    for (const keyId of invalidation.keys) this.entries.delete(keyId);
    if (invalidation.accounts.length === 0) return;
    const accounts = new Set(invalidation.accounts);
    for (const [keyId, entry] of this.entries) {
      if (entry.record && accounts.has(entry.record.account.id)) this.entries.delete(keyId);
    }
  }

  /** Starts trusting entries (the invalidation channel is subscribed). */
  enable(): void {
    this.clear();
    this.enabled = this.options.ttlMs > 0;
  }

  /** Stops trusting and forgets every entry: messages may be missed from now on. */
  disable(): void {
    this.enabled = false;
    this.clear();
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  private store(keyId: string, record: KeyRecord | null, now: number): void {
    if (this.entries.size >= this.options.maxEntries) {
      // Map keeps insertion order: the first entry is the oldest one stored.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(keyId, { record, until: now + this.options.ttlMs });
  }
}
