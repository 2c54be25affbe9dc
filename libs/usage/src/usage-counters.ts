import type Redis from 'ioredis';
import {
  keyUseMember,
  parseCellField,
  parseKeyUseMember,
  type KeyUse,
  type UsageCell,
  type UsageTally,
} from './usage';

/** A claimed batch of counts, as read back from Redis. */
export interface UsageBatch {
  id: string;
  cells: { cell: UsageCell; count: number }[];
  uses: KeyUse[];
}

/**
 * Moves the live counters aside under a batch id, atomically, and records the id, so a flush
 * that dies halfway finds its batch again. Keys of one prefix share a hash tag ({usage}), so the
 * script also runs on Redis Cluster.
 */
const CLAIM = `
local moved = 0
for i = 1, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 4])
    moved = 1
  end
end
if moved == 1 then redis.call('SADD', KEYS[4], ARGV[1]) end
return moved`;

/**
 * Usage in Redis, between the API instances that count and the worker that flushes: one hash of
 * counts per cell, and two sorted sets with each key's first (ZADD LT) and last (ZADD GT) use.
 * Every instance adds into the same keys, so Redis holds the sum.
 */
export class UsageCounters {
  private readonly base: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.base = `${prefix}:{usage}`;
  }

  private live() {
    return { counts: `${this.base}:counts`, first: `${this.base}:first-use`, last: `${this.base}:last-use` };
  }

  private batchKeys(id: string) {
    return {
      counts: `${this.base}:batch:${id}:counts`,
      first: `${this.base}:batch:${id}:first-use`,
      last: `${this.base}:batch:${id}:last-use`,
    };
  }

  private get batches(): string {
    return `${this.base}:batches`;
  }

  /** Adds a tally in one MULTI, so a claim never splits it between two batches. */
  async add(tally: UsageTally): Promise<void> {
    if (tally.empty) return;
    const keys = this.live();
    const multi = this.redis.multi();
    for (const [field, count] of tally.counts) multi.hincrby(keys.counts, field, count);
    for (const use of tally.uses.values()) {
      const member = keyUseMember(use);
      multi.zadd(keys.first, 'LT', use.first, member);
      multi.zadd(keys.last, 'GT', use.last, member);
    }
    const results = await multi.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error('usage MULTI was discarded');
  }

  /** Moves what is counted so far into a new batch; false when there was nothing. */
  async claim(id: string): Promise<boolean> {
    const live = this.live();
    const batch = this.batchKeys(id);
    const moved = await this.redis.eval(
      CLAIM,
      7,
      live.counts,
      live.first,
      live.last,
      this.batches,
      batch.counts,
      batch.first,
      batch.last,
      id,
    );
    return moved === 1;
  }

  /** Ids of batches claimed but not yet dropped: new ones, and any a crashed flush left behind. */
  pending(): Promise<string[]> {
    return this.redis.smembers(this.batches);
  }

  async read(id: string): Promise<UsageBatch> {
    const keys = this.batchKeys(id);
    const [counts, first, last] = await Promise.all([
      this.redis.hgetall(keys.counts),
      this.redis.zrange(keys.first, 0, -1, 'WITHSCORES'),
      this.redis.zrange(keys.last, 0, -1, 'WITHSCORES'),
    ]);
    const cells: UsageBatch['cells'] = [];
    for (const [field, count] of Object.entries(counts)) {
      const cell = parseCellField(field);
      // A field no instance of ours wrote is skipped rather than failing every flush after it.
      if (cell) cells.push({ cell, count: Number(count) });
    }
    const firsts = scores(first);
    const uses: KeyUse[] = [];
    for (const [member, lastAt] of scores(last)) {
      const use = parseKeyUseMember(member);
      if (use) uses.push({ ...use, first: firsts.get(member) ?? lastAt, last: lastAt });
    }
    return { id, cells, uses };
  }

  /** Forgets a batch once PostgreSQL holds it. */
  async drop(id: string): Promise<void> {
    const keys = this.batchKeys(id);
    await this.redis.multi().del(keys.counts, keys.first, keys.last).srem(this.batches, id).exec();
  }
}

/** ZRANGE ... WITHSCORES answers [member, score, member, score, ...]. */
function scores(flat: string[]): Map<string, number> {
  const map = new Map<string, number>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i], Number(flat[i + 1]));
  return map;
}
