import { GENESIS_HASH, checkChain, eventHash, type ChainLink } from './hash-chain';
import type { PendingEvent } from './types';

// Pure: the chain is built by hand, exactly the way the store links it (seq from 1, prev hash from
// genesis), with positions that are not the chain sequence so a wrong `brokenAt` cannot pass.

function pending(i: number, overrides: Partial<PendingEvent> = {}): PendingEvent {
  return {
    eventId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    tenantId: 'tenant-1',
    streamId: `account-${i % 2}`,
    streamType: 'ServiceAccount',
    streamVersion: Math.floor(i / 2) + 1,
    type: 'KeyIssued',
    schemaVersion: 1,
    data: { keyId: `key_${i}`, scopes: ['read', 'write'], nested: { n: i, flag: true } },
    metadata: {
      actor: { type: 'operator', id: 'op_1', name: 'Ada' },
      reason: 'rotation',
      correlationId: `c-${i}`,
    },
    occurredAt: new Date(Date.UTC(2026, 0, 1, 12, 0, i)),
    ...overrides,
  };
}

/** A tenant's intact chain of `n` links and its head row. Positions are 100, 110, 120, ... */
function buildChain(n: number): { links: ChainLink[]; head: { seq: bigint; hash: string } } {
  const links: ChainLink[] = [];
  let prevHash = GENESIS_HASH;
  for (let i = 0; i < n; i++) {
    const event = pending(i);
    const chainSeq = BigInt(i + 1);
    const hash = eventHash(event, chainSeq, prevHash);
    links.push({ event, chainSeq, prevHash, hash, position: BigInt(100 + 10 * i) });
    prevHash = hash;
  }
  return { links, head: { seq: BigInt(n), hash: prevHash } };
}

describe('eventHash', () => {
  const event = pending(3);
  const base = eventHash(event, 4n, GENESIS_HASH);

  it('is a sha-256 hex digest and deterministic', () => {
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(eventHash(pending(3), 4n, GENESIS_HASH)).toBe(base);
  });

  it('does not depend on key order (jsonb hands the data back with its keys reordered)', () => {
    const reordered: PendingEvent = {
      ...event,
      data: { nested: { flag: true, n: 3 }, scopes: ['read', 'write'], keyId: 'key_3' },
      metadata: {
        correlationId: 'c-3',
        reason: 'rotation',
        actor: { name: 'Ada', id: 'op_1', type: 'operator' },
      },
    };
    expect(eventHash(reordered, 4n, GENESIS_HASH)).toBe(base);
  });

  it('covers the hash before it and the chain sequence', () => {
    expect(eventHash(event, 4n, 'f'.repeat(64))).not.toBe(base);
    expect(eventHash(event, 5n, GENESIS_HASH)).not.toBe(base);
  });

  const edits: [string, Partial<PendingEvent>][] = [
    ['eventId', { eventId: '00000000-0000-4000-8000-999999999999' }],
    ['tenantId', { tenantId: 'tenant-2' }],
    ['streamId', { streamId: 'account-9' }],
    ['streamType', { streamType: 'Operator' }],
    ['streamVersion', { streamVersion: 99 }],
    ['type', { type: 'KeyRevoked' }],
    ['schemaVersion', { schemaVersion: 2 }],
    ['data', { data: { keyId: 'key_3', scopes: ['read', 'write', 'admin'], nested: { n: 3, flag: true } } }],
    [
      'metadata.actor',
      { metadata: { ...event.metadata, actor: { type: 'operator', id: 'op_2', name: 'Ada' } } },
    ],
    ['metadata.reason', { metadata: { ...event.metadata, reason: null } }],
    ['occurredAt', { occurredAt: new Date(event.occurredAt.getTime() + 1) }],
  ];
  it.each(edits)('covers %s', (_field, edit) => {
    expect(eventHash({ ...event, ...edit }, 4n, GENESIS_HASH)).not.toBe(base);
  });
});

describe('checkChain', () => {
  it('accepts an intact chain and its head', () => {
    const { links, head } = buildChain(6);
    expect(checkChain(links, head)).toEqual({ ok: true, checked: 6, brokenAt: null });
  });

  it('accepts an empty chain with no head row, and refuses an empty chain whose head says otherwise', () => {
    expect(checkChain([], null)).toEqual({ ok: true, checked: 0, brokenAt: null });
    const { head } = buildChain(2);
    expect(checkChain([], head)).toEqual({ ok: false, checked: 0, brokenAt: null });
  });

  it('detects edited data at the edited event', () => {
    const { links, head } = buildChain(6);
    links[2] = { ...links[2], event: { ...links[2].event, data: { keyId: 'key_2', scopes: ['admin'] } } };
    expect(checkChain(links, head)).toEqual({ ok: false, checked: 3, brokenAt: 120n });
  });

  it('detects an edited occurredAt at the edited event', () => {
    const { links, head } = buildChain(6);
    links[4] = {
      ...links[4],
      event: { ...links[4].event, occurredAt: new Date('2020-01-01T00:00:00.000Z') },
    };
    expect(checkChain(links, head)).toEqual({ ok: false, checked: 5, brokenAt: 140n });
  });

  it('detects an edit whose own hash was recomputed, at the event after it', () => {
    const { links, head } = buildChain(6);
    const event = { ...links[2].event, data: { keyId: 'forged' } };
    links[2] = { ...links[2], event, hash: eventHash(event, links[2].chainSeq, links[2].prevHash) };
    expect(checkChain(links, head)).toEqual({ ok: false, checked: 4, brokenAt: 130n });
  });

  it('detects a whole chain recomputed after an edit, by the head row', () => {
    const { links, head } = buildChain(4);
    let prevHash = GENESIS_HASH;
    const forged = links.map((link, i) => {
      const event = i === 1 ? { ...link.event, data: { keyId: 'forged' } } : link.event;
      const hash = eventHash(event, link.chainSeq, prevHash);
      const out = { ...link, event, prevHash, hash };
      prevHash = hash;
      return out;
    });
    expect(checkChain(forged, head)).toEqual({ ok: false, checked: 4, brokenAt: 130n });
  });

  it('detects a deleted middle event at the event after the gap', () => {
    const { links, head } = buildChain(6);
    links.splice(2, 1);
    expect(checkChain(links, head)).toEqual({ ok: false, checked: 3, brokenAt: 130n });
  });

  it('detects a swapped pair at the first event out of place', () => {
    const { links, head } = buildChain(6);
    [links[3], links[4]] = [links[4], links[3]];
    expect(checkChain(links, head)).toEqual({ ok: false, checked: 4, brokenAt: 140n });
  });

  it('detects a swapped pair whose sequence numbers were swapped too', () => {
    const { links, head } = buildChain(6);
    const [a, b] = [links[3], links[4]];
    links[3] = { ...b, chainSeq: a.chainSeq };
    links[4] = { ...a, chainSeq: b.chainSeq };
    expect(checkChain(links, head)).toEqual({ ok: false, checked: 4, brokenAt: 140n });
  });

  it('detects deleted newest events by the head row, at the last event still there', () => {
    const { links, head } = buildChain(6);
    links.splice(4, 2);
    expect(checkChain(links, head)).toEqual({ ok: false, checked: 4, brokenAt: 130n });
  });

  it('refuses a sequence that skips a number, even with every hash and the head recomputed to match', () => {
    const links: ChainLink[] = [];
    let prevHash = GENESIS_HASH;
    for (const [i, seq] of [1n, 2n, 4n].entries()) {
      const event = pending(i);
      const hash = eventHash(event, seq, prevHash);
      links.push({ event, chainSeq: seq, prevHash, hash, position: BigInt(100 + 10 * i) });
      prevHash = hash;
    }
    expect(checkChain(links, { seq: 3n, hash: prevHash })).toEqual({ ok: false, checked: 3, brokenAt: 120n });
  });

  it('detects a chain that does not start at sequence 1 from genesis', () => {
    const { links, head } = buildChain(6);
    expect(checkChain(links.slice(1), head)).toEqual({ ok: false, checked: 1, brokenAt: 110n });
  });
});
