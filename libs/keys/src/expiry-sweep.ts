import { randomUUID } from 'node:crypto';
import type { Db } from '@keyward/db';
import {
  StreamVersionConflict,
  type EventMetadata,
  type EventStore,
  type StreamAppend,
} from '@keyward/event-store';
import { decideExpiry } from './key';
import { KEY_STREAM } from './key.events';
import { keyFromRow } from './keys.projection';

export interface ExpirySweepResult {
  /** Keys that got their KeyExpired in this run. */
  expired: number;
  /** Batches that met a key changed meanwhile and were read again. */
  retries: number;
}

const DEFAULT_BATCH = 1_000;
/** A batch that keeps meeting changed keys is left to the next run rather than retried forever. */
const MAX_RETRIES_PER_BATCH = 3;

/**
 * The next keys after `after` (in id order) that are past their expiry or grace with no
 * `KeyExpired` yet: the read model's view of decideExpiry, which confirms each one.
 */
export function expiryCandidates(db: Db, now: Date, after: string, limit: number) {
  return db
    .selectFrom('keys')
    .selectAll()
    .where('revoked_at', 'is', null)
    .where('expired_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', '<=', now), eb('grace_ends_at', '<=', now)]))
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/**
 * Writes `KeyExpired` for every key past its expiry or rotation grace, a batch at a time: one
 * query finds a batch (in key id order), the aggregate's own decideExpiry confirms each key, and
 * one append claims every key stream at the version it was read at (the event store's set-based
 * path) and applies the keys projection to all of them at once.
 *
 * Safe to run twice or concurrently: a key already expired decides nothing, and a key that
 * changed after it was read (revoked, rotated, or expired by another sweep) fails the batch's
 * version check, so the batch is read again; nothing is written twice.
 */
export async function sweepExpiredKeys(
  db: Db,
  store: EventStore,
  now: Date,
  options: { batchSize?: number; correlationId?: string } = {},
): Promise<ExpirySweepResult> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const metadata: EventMetadata = {
    actor: { type: 'system', id: 'expiry-sweep', name: 'expiry sweep' },
    reason: 'expired',
    correlationId: options.correlationId ?? randomUUID(),
  };
  const result: ExpirySweepResult = { expired: 0, retries: 0 };
  let after = '';
  let retries = 0;
  for (;;) {
    const rows = await expiryCandidates(db, now, after, batchSize);
    if (rows.length === 0) return result;
    const appends: StreamAppend[] = rows.map(keyFromRow).flatMap((key) => {
      const events = decideExpiry(key, now);
      return events.length === 0
        ? []
        : [
            {
              tenantId: key.tenantId,
              streamId: key.id,
              streamType: KEY_STREAM,
              expectedVersion: key.version,
              events,
            },
          ];
    });
    try {
      if (appends.length > 0) await store.append(appends, metadata);
      result.expired += appends.length;
    } catch (error) {
      if (!(error instanceof StreamVersionConflict)) throw error;
      result.retries++;
      if (++retries <= MAX_RETRIES_PER_BATCH) continue; // the same batch, read again
    }
    retries = 0;
    after = rows[rows.length - 1].id;
  }
}
