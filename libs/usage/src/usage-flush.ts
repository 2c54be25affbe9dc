import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '@keyward/db';
import type { UsageBatch, UsageCounters } from './usage-counters';

/** Rows per INSERT: well under PostgreSQL's 65,535 bind parameters at 7 per row. */
const CHUNK = 1_000;

/** How long applied batch ids are remembered; a batch older than this cannot still be pending. */
const BATCH_MEMORY = '7 days';

export interface FlushResult {
  /** Batches written to PostgreSQL by this flush. */
  applied: number;
  /** Batches found already written (a flush that died after its commit): dropped from Redis only. */
  skipped: number;
  cells: number;
  keys: number;
}

/**
 * Moves usage from Redis to PostgreSQL: claims what is counted under a new batch id, then writes
 * every pending batch (this one and any a crashed flush left) in a transaction of its own that
 * also records the batch id. A batch already recorded is not written again, so a retry, a crash
 * between commit and cleanup, or two workers flushing at once never count anything twice.
 */
export async function flushUsage(db: Db, counters: UsageCounters): Promise<FlushResult> {
  await counters.claim(randomUUID().replaceAll('-', ''));
  const result: FlushResult = { applied: 0, skipped: 0, cells: 0, keys: 0 };
  for (const id of await counters.pending()) {
    const batch = await counters.read(id);
    if (await applyBatch(db, batch)) {
      result.applied++;
      result.cells += batch.cells.length;
      result.keys += batch.uses.length;
    } else {
      result.skipped++;
    }
    await counters.drop(id);
  }
  await db
    .deleteFrom('usage_batches')
    .where('applied_at', '<', sql<Date>`now() - ${BATCH_MEMORY}::interval`)
    .execute();
  return result;
}

/** Writes one batch unless it was written before; true when written now. */
async function applyBatch(db: Db, batch: UsageBatch): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    // A concurrent flush of the same batch waits here on the primary key, then finds it taken.
    const claimed = await trx
      .insertInto('usage_batches')
      .values({ batch: batch.id, applied_at: sql<Date>`now()` })
      .onConflict((oc) => oc.column('batch').doNothing())
      .returning('batch')
      .executeTakeFirst();
    if (!claimed) return false;
    await addCounts(trx, batch);
    await touchKeys(trx, batch);
    await touchAccounts(trx, batch);
    return true;
  });
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

async function addCounts(trx: Transaction<Database>, batch: UsageBatch): Promise<void> {
  for (const part of chunks(batch.cells)) {
    await trx
      .insertInto('usage_minutes')
      .values(
        part.map(({ cell, count }) => ({
          tenant_id: cell.tenantId,
          minute: new Date(cell.minute),
          key_id: cell.keyId,
          service_account_id: cell.serviceAccountId,
          code: cell.code,
          source_ip: cell.sourceIp,
          system: cell.system,
          count: String(count),
        })),
      )
      .onConflict((oc) =>
        oc
          .columns(['tenant_id', 'minute', 'key_id', 'code', 'source_ip', 'system'])
          .doUpdateSet({ count: sql`usage_minutes.count + excluded.count` }),
      )
      .execute();
  }
}

/**
 * A key's last use is written at most once a minute: the row moves only when the new use is a
 * minute or more after the stored one, so a key verified thousands of times a second costs one
 * row update a minute, and `lastUsedAt` is exact to the minute.
 */
async function touchKeys(trx: Transaction<Database>, batch: UsageBatch): Promise<void> {
  for (const part of chunks(batch.uses)) {
    await trx
      .insertInto('key_usage')
      .values(part.map((use) => ({ key_id: use.keyId, last_used_at: new Date(use.last) })))
      .onConflict((oc) =>
        oc
          .column('key_id')
          .doUpdateSet({ last_used_at: sql`excluded.last_used_at` })
          .where(sql<boolean>`key_usage.last_used_at <= excluded.last_used_at - interval '1 minute'`),
      )
      .execute();
  }
}

/** First and last seen per account, by the same once-a-minute rule (first seen only ever moves back). */
async function touchAccounts(trx: Transaction<Database>, batch: UsageBatch): Promise<void> {
  const accounts = new Map<string, { first: number; last: number }>();
  for (const use of batch.uses) {
    const seen = accounts.get(use.serviceAccountId);
    if (!seen) accounts.set(use.serviceAccountId, { first: use.first, last: use.last });
    else {
      seen.first = Math.min(seen.first, use.first);
      seen.last = Math.max(seen.last, use.last);
    }
  }
  for (const part of chunks([...accounts])) {
    await trx
      .insertInto('account_usage')
      .values(
        part.map(([id, seen]) => ({
          service_account_id: id,
          first_seen_at: new Date(seen.first),
          last_seen_at: new Date(seen.last),
        })),
      )
      .onConflict((oc) =>
        oc
          .column('service_account_id')
          .doUpdateSet({
            first_seen_at: sql`least(account_usage.first_seen_at, excluded.first_seen_at)`,
            last_seen_at: sql`greatest(account_usage.last_seen_at, excluded.last_seen_at)`,
          })
          .where(
            sql<boolean>`account_usage.last_seen_at <= excluded.last_seen_at - interval '1 minute'
              or excluded.first_seen_at < account_usage.first_seen_at`,
          ),
      )
      .execute();
  }
}
