import fc from 'fast-check';
import { ChainWalk, GENESIS_HASH, eventHash, type ChainLink, type PendingEvent } from '@keyward/event-store';
import { integrityView } from './integrity';

// The integrity check feeds ChainWalk a batch at a time: every tampering the event store's own
// tests name is found at the right position, and any forged event breaks the chain.

function pending(i: number): PendingEvent {
  return {
    eventId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    tenantId: 'tenant-1',
    streamId: `sa_${i % 3}`,
    streamType: 'service-account',
    streamVersion: Math.floor(i / 3) + 1,
    type: 'ServiceAccountUpdated',
    schemaVersion: 1,
    data: { changes: { description: `change ${i}` } },
    metadata: { actor: { type: 'operator', id: 'op_1', name: 'Ada' }, reason: null, correlationId: `c-${i}` },
    occurredAt: new Date(Date.UTC(2026, 2, 1, 9, 0, i)),
  };
}

/** An intact chain; positions 100, 110, ... so a brokenAt that is a chain sequence cannot pass. */
function buildChain(n: number): { links: ChainLink[]; head: { seq: bigint; hash: string } | null } {
  const links: ChainLink[] = [];
  let prevHash = GENESIS_HASH;
  for (let i = 0; i < n; i++) {
    const event = pending(i);
    const chainSeq = BigInt(i + 1);
    const hash = eventHash(event, chainSeq, prevHash);
    links.push({ event, chainSeq, prevHash, hash, position: BigInt(100 + 10 * i) });
    prevHash = hash;
  }
  return { links, head: n === 0 ? null : { seq: BigInt(n), hash: prevHash } };
}

function walk(links: ChainLink[], head: { seq: bigint; hash: string } | null) {
  const w = new ChainWalk();
  for (const link of links) if (!w.add(link)) break;
  return w.result(head);
}

describe('ChainWalk', () => {
  it('on an intact chain and on empty ones', () => {
    const { links, head } = buildChain(6);
    expect(walk(links, head)).toEqual({ ok: true, checked: 6, brokenAt: null });
    expect(walk([], null)).toEqual({ ok: true, checked: 0, brokenAt: null });
    expect(walk([], head)).toEqual({ ok: false, checked: 0, brokenAt: null });
  });

  it('on edited data and an edited occurredAt, at the edited event', () => {
    const a = buildChain(6);
    a.links[2] = { ...a.links[2], event: { ...a.links[2].event, data: { forged: true } } };
    expect(walk(a.links, a.head)).toEqual({ ok: false, checked: 3, brokenAt: 120n });
    const b = buildChain(6);
    b.links[4] = { ...b.links[4], event: { ...b.links[4].event, occurredAt: new Date(0) } };
    expect(walk(b.links, b.head)).toEqual({ ok: false, checked: 5, brokenAt: 140n });
  });

  it('on a deleted middle event, a swapped pair and deleted newest events', () => {
    const deleted = buildChain(6);
    deleted.links.splice(2, 1);
    expect(walk(deleted.links, deleted.head)).toEqual({ ok: false, checked: 3, brokenAt: 130n });
    const swapped = buildChain(6);
    [swapped.links[3], swapped.links[4]] = [swapped.links[4], swapped.links[3]];
    expect(walk(swapped.links, swapped.head)).toEqual({ ok: false, checked: 4, brokenAt: 140n });
    const newest = buildChain(6);
    newest.links.splice(4, 2);
    expect(walk(newest.links, newest.head)).toEqual({ ok: false, checked: 4, brokenAt: 130n });
  });

  it('on an edit whose hash was recomputed, at the event after it', () => {
    const { links, head } = buildChain(6);
    const event = { ...links[2].event, data: { forged: true } };
    links[2] = { ...links[2], event, hash: eventHash(event, links[2].chainSeq, links[2].prevHash) };
    expect(walk(links, head)).toEqual({ ok: false, checked: 4, brokenAt: 130n });
  });

  it('never calls a chain with a forged event intact, whatever else was done to it', () => {
    const tamper = fc.oneof(
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('swap' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('edit' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('head' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 }), fc.array(tamper, { maxLength: 3 }), (n, tampers) => {
        const chain = buildChain(n);
        let { links, head } = chain;
        links = [...links];
        let forged = false;
        for (const { kind, at } of tampers) {
          if (links.length === 0) break;
          const i = at % links.length;
          if (kind === 'delete') links.splice(i, 1);
          if (kind === 'swap' && i + 1 < links.length) [links[i], links[i + 1]] = [links[i + 1], links[i]];
          if (kind === 'edit') {
            links[i] = { ...links[i], event: { ...links[i].event, type: 'Forged' } };
            forged = true;
          }
          if (kind === 'head') head = { seq: BigInt(at % (n + 2)), hash: head?.hash ?? GENESIS_HASH };
        }
        const verdict = walk(links, head);
        if (forged) expect(verdict.ok).toBe(false);
        expect(verdict.checked).toBeLessThanOrEqual(links.length);
      }),
    );
  });
});

it('answers positions as numbers', () => {
  expect(integrityView({ ok: false, checked: 3, brokenAt: 120n })).toEqual({
    ok: false,
    checked: 3,
    brokenAt: 120,
  });
  expect(integrityView({ ok: true, checked: 0, brokenAt: null })).toEqual({
    ok: true,
    checked: 0,
    brokenAt: null,
  });
});
