import { createHash } from 'node:crypto';
import { canonicalJson } from '@keyward/core';
import type { PendingEvent } from './types';

/** The chain's first `prev_hash`. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * An event's hash covers everything the event says and the hash before it in its tenant's
 * chain, so an edited, deleted or reordered event breaks every hash after it.
 */
export function eventHash(event: PendingEvent, chainSeq: bigint, prevHash: string): string {
  const content = canonicalJson({
    chainSeq: chainSeq.toString(),
    eventId: event.eventId,
    tenantId: event.tenantId,
    streamId: event.streamId,
    streamType: event.streamType,
    streamVersion: event.streamVersion,
    type: event.type,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata: event.metadata,
    occurredAt: event.occurredAt.toISOString(),
  });
  return createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}

export interface ChainLink {
  event: PendingEvent;
  chainSeq: bigint;
  prevHash: string;
  hash: string;
  position: bigint;
}

export interface ChainCheck {
  ok: boolean;
  checked: number;
  /** Position of the first event whose link does not hold, or null. */
  brokenAt: bigint | null;
}

/**
 * Walks one tenant's chain in chain order. `head` is the chain head row, which catches a
 * deletion of the newest events.
 */
export function checkChain(
  links: Iterable<ChainLink>,
  head: { seq: bigint; hash: string } | null,
): ChainCheck {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1n;
  let checked = 0;
  let last: ChainLink | undefined;
  for (const link of links) {
    checked += 1;
    const intact =
      link.chainSeq === expectedSeq &&
      link.prevHash === prevHash &&
      eventHash(link.event, link.chainSeq, link.prevHash) === link.hash;
    if (!intact) return { ok: false, checked, brokenAt: link.position };
    prevHash = link.hash;
    expectedSeq += 1n;
    last = link;
  }
  const headSeq = head?.seq ?? 0n;
  const headHash = head?.hash ?? GENESIS_HASH;
  if (headSeq !== expectedSeq - 1n || headHash !== prevHash) {
    return { ok: false, checked, brokenAt: last?.position ?? null };
  }
  return { ok: true, checked, brokenAt: null };
}
