import { InvalidatedCache } from '@keyward/core';
import type { InvalidationTarget, KeyInvalidation } from '@keyward/keys';
import type { OperatorRow } from '@keyward/db';

/**
 * The auth guard's operator credentials by token hash (and hashes that match no active operator,
 * `null`), so a warm verifier or admin is authenticated without a PostgreSQL read. Kept honest
 * like the key cache: every commit on an operator's stream (deleted, its role changed) drops it
 * on every instance.
 */
export class OperatorCache extends InvalidatedCache<OperatorRow | null> implements InvalidationTarget {
  invalidate(invalidation: KeyInvalidation): void {
    if (invalidation.operators.length === 0) return;
    const operators = new Set(invalidation.operators);
    this.drop([], (row) => row !== null && operators.has(row.id));
  }
}
