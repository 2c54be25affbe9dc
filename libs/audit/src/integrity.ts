import type { Db } from '@keyward/db';
import { ChainWalk, toRecordedEvent, type ChainCheck } from '@keyward/event-store';
import { positionView } from './event-view';

/** API.md's integrity answer: positions as numbers, like every other position the API shows. */
export interface IntegrityView {
  ok: boolean;
  checked: number;
  brokenAt: number | null;
}

export function integrityView(check: ChainCheck): IntegrityView {
  return {
    ok: check.ok,
    checked: check.checked,
    brokenAt: check.brokenAt === null ? null : positionView(check.brokenAt),
  };
}

/** Events per query of the walk. */
const CHAIN_BATCH = 1_000;

/**
 * Checks one tenant's hash chain as stored, a batch of events at a time, so memory stays flat
 * however long the chain is. The head row and every batch are read in one repeatable-read
 * snapshot, so an append committing meanwhile is either wholly seen or not at all, never a head
 * ahead of its events. Events are walked in position order: within a tenant that is chain order
 * (the chain head stays locked from numbering to commit), so rows whose contents were swapped,
 * chain fields and all, are out of sequence there.
 */
export function checkIntegrity(db: Db, tenantId: string): Promise<ChainCheck> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      const head = await trx
        .selectFrom('chain_heads')
        .select(['seq', 'hash'])
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst();
      const walk = new ChainWalk();
      let after = '0';
      let more = true;
      while (more) {
        const batch = await trx
          .selectFrom('events')
          .selectAll()
          .where('tenant_id', '=', tenantId)
          .where('position', '>', after)
          .orderBy('position')
          .limit(CHAIN_BATCH)
          .execute();
        const last = batch[batch.length - 1];
        more = batch.length === CHAIN_BATCH && last !== undefined;
        for (const row of batch) {
          const event = toRecordedEvent(row);
          const { chainSeq, prevHash, hash, position } = event;
          // The walk stops at the first broken link: nothing after it can be trusted either.
          if (!walk.add({ event, chainSeq, prevHash, hash, position })) {
            more = false;
            break;
          }
        }
        if (last) after = last.position;
      }
      return walk.result(head ? { seq: BigInt(head.seq), hash: head.hash } : null);
    });
}
