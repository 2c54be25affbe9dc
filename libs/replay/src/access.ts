import { evolve, type ServiceAccount } from '@keyward/accounts';
import {
  evolveKey,
  isLive,
  keyStatusAt,
  scopeCovers,
  scopesCover,
  type Key,
  type KeyIssuedV1,
  type KeyStatus,
} from '@keyward/keys';
import { streamsAsOf } from './as-of';
import { accountFact, keyFact } from './facts';
import type { StreamEvent } from './stream-event';

/**
 * One event that put a scope covering the asked one on an account's ceiling or on a key. Who made
 * it and why is in its metadata, which a reader adds (only these few events need it).
 */
export interface GrantingEvent {
  position: bigint;
  streamId: string;
  version: number;
  type: string;
  occurredAt: Date;
  /** The scopes covering the asked scope that this event granted. */
  scopes: string[];
}

/** A key that could have used a scope at a time, with the account it belonged to then. */
export interface AccessAsOf<Grant extends GrantingEvent = GrantingEvent> {
  account: ServiceAccount;
  key: Key;
  /** `active` or `rotating`: only a live key could be used. */
  status: KeyStatus;
  /** The key's scopes that cover the asked scope. */
  matchingScopes: string[];
  grantedBy: {
    /** The events that put the covering scopes on the account's ceiling, oldest first. */
    ceiling: Grant[];
    /** The key's KeyIssued and, for a key made by a rotation, the old key's KeyRotated. */
    key: Grant[];
  };
}

/**
 * A key's scopes only ever narrow after its KeyIssued (no event widens them), so a key whose
 * issued scopes do not cover `scope` never could have used it: a reader may skip its stream.
 */
export function issuedKeyMayCover(issued: Pick<KeyIssuedV1, 'scopes'>, scope: string): boolean {
  return scopesCover(issued.scopes, scope);
}

/**
 * Every key in `events` that could have used `scope` at `asOf`: live then, its account active
 * then, its own scopes and its account's ceiling both covering the scope, by the matching verify
 * uses. `events` must hold each such key's stream, its account's stream, and (for a key made by
 * a rotation) the old key's stream; later events and other streams are ignored.
 */
export function accessAsOf(events: readonly StreamEvent[], scope: string, asOf: Date): AccessAsOf[] {
  const streams = streamsAsOf(events, asOf);
  const accounts = new Map<string, Traced<ServiceAccount> | null>();
  const accountAt = (id: string) => {
    if (!accounts.has(id)) {
      const stream = streams.get(id);
      accounts.set(id, stream ? traceScopes(stream, accountFact, evolve, (a) => a.allowedScopes) : null);
    }
    return accounts.get(id)!;
  };

  const items: AccessAsOf[] = [];
  for (const stream of streams.values()) {
    const traced = traceScopes(stream, keyFact, evolveKey, (k) => k.scopes);
    if (!traced) continue;
    const { state: key, origins: keyOrigins } = traced;
    if (!isLive(key, asOf)) continue;
    const matchingScopes = key.scopes.filter((s) => scopeCovers(s, scope));
    if (matchingScopes.length === 0) continue;
    const owner = accountAt(key.serviceAccountId);
    if (!owner || owner.state.status !== 'active') continue;
    const ceilingScopes = owner.state.allowedScopes.filter((s) => scopeCovers(s, scope));
    if (ceilingScopes.length === 0) continue;

    const keyGrants = grantingEvents(matchingScopes, keyOrigins);
    const rotation = key.replaces ? rotationOf(streams.get(key.replaces), key.id) : undefined;
    if (rotation) keyGrants.push(grantingEvent(rotation, matchingScopes));
    items.push({
      account: owner.state,
      key,
      status: keyStatusAt(key, asOf),
      matchingScopes,
      grantedBy: {
        ceiling: grantingEvents(ceilingScopes, owner.origins),
        key: keyGrants.sort(byPosition),
      },
    });
  }
  return items.sort(
    (a, b) =>
      compare(a.account.name, b.account.name) ||
      compare(a.account.id, b.account.id) ||
      a.key.createdAt.getTime() - b.key.createdAt.getTime() ||
      compare(a.key.id, b.key.id),
  );
}

/** A folded state, and for each scope it holds the event that last put that scope there. */
interface Traced<S> {
  state: S;
  origins: Map<string, StreamEvent>;
}

/**
 * Folds a stream with the aggregate's own `evolve`, noting after each event which scopes it
 * added (and forgetting those it removed): the origin of a scope is read off the fold itself,
 * not off a second reading of what each event type means.
 */
function traceScopes<S, F>(
  stream: readonly StreamEvent[],
  factOf: (event: StreamEvent) => F | null,
  step: (state: S | null, fact: F) => S,
  scopesOf: (state: S) => readonly string[],
): Traced<S> | null {
  let state: S | null = null;
  const origins = new Map<string, StreamEvent>();
  for (const event of stream) {
    const fact = factOf(event);
    if (!fact) continue;
    const before = new Set(state ? scopesOf(state) : []);
    state = step(state, fact);
    const after = new Set(scopesOf(state));
    for (const s of after) if (!before.has(s)) origins.set(s, event);
    for (const s of before) if (!after.has(s)) origins.delete(s);
  }
  return state === null ? null : { state, origins };
}

/** One entry per event, naming the scopes it granted, oldest first. */
function grantingEvents(scopes: readonly string[], origins: Map<string, StreamEvent>): GrantingEvent[] {
  const byEvent = new Map<StreamEvent, string[]>();
  for (const scope of scopes) {
    const event = origins.get(scope);
    if (!event) continue;
    const granted = byEvent.get(event);
    if (granted) granted.push(scope);
    else byEvent.set(event, [scope]);
  }
  return [...byEvent].map(([event, granted]) => grantingEvent(event, granted)).sort(byPosition);
}

/** The old key's KeyRotated that made `keyId`: the rotation handed the new key its scopes. */
function rotationOf(oldStream: readonly StreamEvent[] | undefined, keyId: string) {
  return oldStream?.find(
    (e) => e.type === 'KeyRotated' && (e.data as { replacedBy?: string }).replacedBy === keyId,
  );
}

function grantingEvent(event: StreamEvent, scopes: string[]): GrantingEvent {
  return {
    position: event.position,
    streamId: event.streamId,
    version: event.streamVersion,
    type: event.type,
    occurredAt: event.occurredAt,
    scopes,
  };
}

function byPosition(a: GrantingEvent, b: GrantingEvent): number {
  return a.position < b.position ? -1 : a.position > b.position ? 1 : 0;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
