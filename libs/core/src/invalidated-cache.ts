import type { Clock } from './clock';

export interface InvalidatedCacheOptions {
  /** How long an entry is trusted without any message: the bound on a lost invalidation. */
  ttlMs: number;
  maxEntries: number;
  /** Asked on every lookup, no I/O: while false, entries are not trusted (the store is away). */
  trusted?: () => boolean;
}

interface Entry<V> {
  value: V;
  until: number;
}

/**
 * An in-process cache that is only as good as the invalidations reaching it: trusted only while
 * its owner says invalidations can arrive (`enable`), and each entry also dies after `ttlMs` on
 * its own. The verify path keeps key records in one and the auth guard operator credentials in
 * another, so both are answered without I/O when warm and neither outlives a change by more than
 * the invalidation's trip (or, a message lost, the entry's lifetime).
 *
 * A load that was in flight while an invalidation arrived may carry the state from before the
 * change, so its result is answered but not kept: every invalidation bumps `generation`, and a
 * load whose generation moved on is not stored.
 */
export class InvalidatedCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private generation = 0;
  private enabled = false;

  constructor(
    private readonly clock: Clock,
    private readonly options: InvalidatedCacheOptions,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The value for `id` from the cache, or from `load` (kept when nothing changed meanwhile). */
  async get(id: string, load: () => Promise<V>): Promise<V> {
    if (!this.enabled || this.options.trusted?.() === false) return load();
    const now = this.clock.now().getTime();
    const hit = this.entries.get(id);
    if (hit && hit.until > now) return hit.value;
    if (hit) this.entries.delete(id);
    const generation = this.generation;
    const value = await load();
    if (this.enabled && generation === this.generation) this.store(id, value, now);
    return value;
  }

  /** Drops the entries of these ids, and every entry whose value `matches`. */
  drop(ids: Iterable<string>, matches?: (value: V) => boolean): void {
    this.generation++;
    for (const id of ids) this.entries.delete(id);
    if (!matches) return;
    for (const [id, entry] of this.entries) {
      if (matches(entry.value)) this.entries.delete(id);
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

  private store(id: string, value: V, now: number): void {
    if (this.entries.size >= this.options.maxEntries) {
      // Map keeps insertion order: the first entry is the oldest one stored.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(id, { value, until: now + this.options.ttlMs });
  }
}
