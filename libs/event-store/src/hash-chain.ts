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
 * The chain's rules one link at a time, so a chain read a batch at a time (the integrity check)
 * is checked by the same code as a chain held whole (checkChain).
 */
export class ChainWalk {
  private prevHash = GENESIS_HASH;
  private expectedSeq = 1n;
  private checked = 0;
  private lastPosition: bigint | null = null;
  private brokenAt: bigint | null = null;

  /** Checks the next link; false once the chain is broken, after which links are not looked at. */
  add(link: ChainLink): boolean {
    if (this.brokenAt !== null) return false;
    this.checked += 1;
    const intact =
      link.chainSeq === this.expectedSeq &&
      link.prevHash === this.prevHash &&
      eventHash(link.event, link.chainSeq, link.prevHash) === link.hash;
    if (!intact) {
      this.brokenAt = link.position;
      return false;
    }
    this.prevHash = link.hash;
    this.expectedSeq += 1n;
    this.lastPosition = link.position;
    return true;
  }

  /** The verdict once every link was added; `head` (the chain head row) catches lost newest events. */
  result(head: { seq: bigint; hash: string } | null): ChainCheck {
    if (this.brokenAt !== null) return { ok: false, checked: this.checked, brokenAt: this.brokenAt };
    const headSeq = head?.seq ?? 0n;
    const headHash = head?.hash ?? GENESIS_HASH;
    if (headSeq !== this.expectedSeq - 1n || headHash !== this.prevHash) {
      return { ok: false, checked: this.checked, brokenAt: this.lastPosition };
    }
    return { ok: true, checked: this.checked, brokenAt: null };
  }
}

/**
 * Walks one tenant's chain in chain order. `head` is the chain head row, which catches a
 * deletion of the newest events.
 */
export function checkChain(
  links: Iterable<ChainLink>,
  head: { seq: bigint; hash: string } | null,
): ChainCheck {
  const walk = new ChainWalk();
  for (const link of links) if (!walk.add(link)) break;
  return walk.result(head);
}
