import { Conflict, PolicyViolation, ValidationFailed } from '@keyward/core';
import type { KeyEvent, KeyIssuedV1, RateLimit, RevocationCause } from './key.events';
import { isCanonicalResource, scopesCover, withinBoundaries } from './matching';
import type { TenantPolicy } from './policy';
import { DAY_MS } from './rotation-policy';

/**
 * The key aggregate: plain functions like every aggregate here. A key's status depends on the
 * time as well as on its events (it expires without anyone writing), so it is asked for at a
 * time: `keyStatusAt(key, now)`.
 */
export type KeyStatus = 'active' | 'rotating' | 'expired' | 'revoked';

export interface Key extends KeyIssuedV1 {
  createdAt: Date;
  updatedAt: Date;
  replacedBy: string | null;
  graceEndsAt: string | null;
  /** The key a scheduled rotation issued and is delivering; the rotation is not done until it lands. */
  pendingReplacement: string | null;
  revokedAt: Date | null;
  /** Set by a KeyExpired event; a key is expired by time whether or not it has been written. */
  expiredAt: Date | null;
  exposedAt: Date | null;
  version: number;
}

export type KeyFact = KeyEvent & { occurredAt: Date };

export function evolveKey(state: Key | null, event: KeyFact): Key {
  if (event.type === 'KeyIssued') {
    return {
      ...event.data,
      createdAt: event.occurredAt,
      updatedAt: event.occurredAt,
      replacedBy: null,
      graceEndsAt: null,
      pendingReplacement: null,
      revokedAt: null,
      expiredAt: null,
      exposedAt: null,
      version: 1,
    };
  }
  if (!state) throw new Error(`${event.type} before KeyIssued`);
  const next: Key = { ...state, updatedAt: event.occurredAt, version: state.version + 1 };
  switch (event.type) {
    case 'KeyRotated':
      return {
        ...next,
        replacedBy: event.data.replacedBy,
        graceEndsAt: event.data.graceEndsAt,
        pendingReplacement: null,
      };
    case 'KeyRotationStarted':
      return { ...next, pendingReplacement: event.data.replacedBy };
    case 'KeyRotationAbandoned':
      return { ...next, pendingReplacement: null };
    case 'KeyRevoked':
      return { ...next, revokedAt: event.occurredAt };
    case 'KeyExpired':
      return { ...next, expiredAt: event.occurredAt };
    case 'KeyScopesNarrowed':
      return { ...next, scopes: state.scopes.filter((s) => !event.data.removed.includes(s)) };
    case 'KeyExposed':
      return { ...next, exposedAt: event.occurredAt };
  }
}

export function foldKey(events: readonly KeyFact[]): Key | null {
  return events.reduce<Key | null>(evolveKey, null);
}

type StatusFields = Pick<Key, 'revokedAt' | 'expiredAt' | 'expiresAt' | 'graceEndsAt'>;

/** Revoked beats expired beats rotating; expiry and the end of a grace need no event. */
export function keyStatusAt(key: StatusFields, now: Date): KeyStatus {
  if (key.revokedAt) return 'revoked';
  const t = now.getTime();
  if (key.expiredAt || t >= Date.parse(key.expiresAt)) return 'expired';
  if (key.graceEndsAt) return t >= Date.parse(key.graceEndsAt) ? 'expired' : 'rotating';
  return 'active';
}

export function isLive(key: StatusFields, now: Date): boolean {
  const status = keyStatusAt(key, now);
  return status === 'active' || status === 'rotating';
}

// ---- decisions ----

/** An account holds at most `maxActiveKeys` live keys; one more is a policy violation. */
export function assertRoomForKey(liveKeys: number, policy: TenantPolicy): void {
  if (liveKeys >= policy.maxActiveKeys) {
    throw new PolicyViolation(
      `the account holds ${liveKeys} live keys, the most the tenant policy allows (maxActiveKeys ${policy.maxActiveKeys})`,
      'maxActiveKeys',
    );
  }
}

/** A change based on a version the caller saw that is no longer current (If-Match). */
export function assertKeyVersion(
  key: Pick<Key, 'id' | 'version'>,
  expectedVersion: number | undefined,
): void {
  assertStreamVersion(`key ${key.id}`, key.version, expectedVersion);
}

/** The same rule for the account a key command acts on (revoking every key of it). */
export function assertAccountVersion(
  account: Pick<KeyAccount, 'id'> & { version: number },
  expectedVersion: number | undefined,
): void {
  assertStreamVersion(`service account ${account.id}`, account.version, expectedVersion);
}

function assertStreamVersion(what: string, version: number, expectedVersion: number | undefined): void {
  if (expectedVersion !== undefined && expectedVersion !== version) {
    throw new Conflict(`${what} is at version ${version}, not ${expectedVersion}`, {
      expectedVersion,
      actualVersion: version,
    });
  }
}

/** What the account looks like to a key decision. */
export interface KeyAccount {
  id: string;
  tenantId: string;
  status: 'active' | 'disabled' | 'deleted';
  environment: KeyIssuedV1['environment'];
  allowedScopes: string[];
  boundaries: string[];
}

export interface IssueKey {
  id: string;
  name: string;
  scopes: string[];
  boundaries: string[];
  allowedCidrs: string[];
  rateLimit: RateLimit | null;
  /** Absent: the longest the policy allows. */
  expiresInDays?: number;
}

export interface IssueContext {
  account: KeyAccount;
  policy: TenantPolicy;
  /** Live keys the account holds now. */
  liveKeys: number;
  now: Date;
  secret: { prefix: string; hash: string };
}

export function decideIssue(
  command: IssueKey,
  ctx: IssueContext,
  replaces: string | null = null,
): KeyEvent[] {
  const { account, policy, now } = ctx;
  if (account.status !== 'active') {
    throw new Conflict(`service account ${account.id} is ${account.status}: it cannot be given keys`);
  }
  const outside = command.scopes.filter((s) => !scopesCover(account.allowedScopes, s));
  if (outside.length) {
    throw new PolicyViolation(`scopes outside the account's ceiling: ${outside.join(', ')}`, 'scopes');
  }
  // The aggregate does not trust its caller for the form either: a boundary that is not a
  // canonical resource would, under an unbounded account, pass the containment check below. A
  // rotation carries its key's boundaries as they were issued, so a form rule that came later
  // cannot strand it (such a boundary covers nothing anyway).
  const malformed = replaces ? [] : command.boundaries.filter((b) => !isCanonicalResource(b));
  if (malformed.length) {
    throw new ValidationFailed('the boundaries are not valid', [
      { field: 'boundaries', message: `not type:value segments joined by /: ${malformed.join(', ')}` },
    ]);
  }
  const unbounded = command.boundaries.filter((b) => !withinBoundaries(account.boundaries, b));
  if (unbounded.length) {
    throw new PolicyViolation(
      `boundaries outside the account's boundaries: ${unbounded.join(', ')}`,
      'boundaries',
    );
  }
  const maxDays = policy.maxKeyLifetimeDays[account.environment];
  const days = command.expiresInDays ?? maxDays;
  // A key always expires, and is never expired at birth.
  if (!Number.isInteger(days) || days < 1) {
    throw new ValidationFailed('the lifetime is not valid', [
      { field: 'expiresInDays', message: 'must be a whole number of days, at least 1' },
    ]);
  }
  if (days > maxDays) {
    throw new PolicyViolation(
      `a ${account.environment} key lives at most ${maxDays} days (tenant policy maxKeyLifetimeDays)`,
      'maxKeyLifetimeDays',
    );
  }
  assertRoomForKey(ctx.liveKeys, policy);
  return [
    {
      type: 'KeyIssued',
      data: {
        id: command.id,
        tenantId: account.tenantId,
        serviceAccountId: account.id,
        name: command.name,
        prefix: ctx.secret.prefix,
        secretHash: ctx.secret.hash,
        environment: account.environment,
        scopes: [...new Set(command.scopes)].sort(),
        boundaries: [...new Set(command.boundaries)].sort(),
        allowedCidrs: [...new Set(command.allowedCidrs)].sort(),
        rateLimit: command.rateLimit,
        expiresAt: new Date(now.getTime() + days * DAY_MS).toISOString(),
        replaces,
      },
    },
  ];
}

export interface Rotation {
  /** Appended to the old key's stream. */
  old: KeyEvent[];
  /** The new key's stream. */
  issued: KeyEvent[];
}

/**
 * A new key with the old one's scopes, boundaries and limits, for as long as the old one was
 * issued for (within today's policy); the old one works until the grace ends, never past its
 * own expiry.
 */
export function decideRotate(old: Key, newId: string, graceSeconds: number, ctx: IssueContext): Rotation {
  const issued = decideReplacement(old, newId, ctx);
  return { old: [rotatedEvent(old, newId, graceSeconds, ctx.now)], issued };
}

/**
 * A scheduled rotation's first step: the replacement is issued and this key keeps working in
 * full while the replacement's secret is delivered. Its grace starts only when the delivery is
 * confirmed (decideConfirmRotation); a failed delivery abandons it (decideAbandonRotation).
 */
export function decideStartRotation(old: Key, newId: string, ctx: IssueContext): Rotation {
  const issued = decideReplacement(old, newId, ctx);
  return { old: [{ type: 'KeyRotationStarted', data: { replacedBy: newId } }], issued };
}

/** The replacement's secret was delivered (a 2xx): now the old key's grace starts. */
export function decideConfirmRotation(old: Key, graceSeconds: number, now: Date): KeyEvent[] {
  if (!old.pendingReplacement) throw new Conflict(`key ${old.id} has no rotation in progress`);
  // A key revoked or expired while its replacement was delivered needs no grace: the replacement stands.
  if (!isLive(old, now)) return [];
  return [rotatedEvent(old, old.pendingReplacement, graceSeconds, now)];
}

/** The delivery failed for good: the old key stays as it was, the undelivered replacement is revoked. */
export function decideAbandonRotation(old: Key, replacement: Key, error: string, now: Date): Rotation {
  if (old.pendingReplacement !== replacement.id) {
    throw new Conflict(`key ${replacement.id} is not the rotation in progress of key ${old.id}`);
  }
  return {
    old: [{ type: 'KeyRotationAbandoned', data: { replacedBy: replacement.id, error } }],
    issued: revokeIfLive(replacement, now, 'delivery-failed'),
  };
}

function rotatedEvent(old: Key, newId: string, graceSeconds: number, now: Date): KeyEvent {
  const graceEnd = Math.min(now.getTime() + graceSeconds * 1000, Date.parse(old.expiresAt));
  return { type: 'KeyRotated', data: { replacedBy: newId, graceEndsAt: new Date(graceEnd).toISOString() } };
}

/**
 * A new key with the old one's scopes, boundaries and limits, for as long as the old one was
 * issued for (within today's policy).
 */
function decideReplacement(old: Key, newId: string, ctx: IssueContext): KeyEvent[] {
  const status = keyStatusAt(old, ctx.now);
  if (status === 'revoked' || status === 'expired')
    throw new Conflict(`key ${old.id} is ${status}: it cannot be rotated`);
  if (status === 'rotating')
    throw new Conflict(`key ${old.id} is already being rotated (replaced by ${old.replacedBy})`);
  if (old.pendingReplacement)
    throw new Conflict(
      `key ${old.id} is already being rotated: the secret of ${old.pendingReplacement} is being delivered`,
    );
  const lifetimeDays = Math.max(
    1,
    Math.round((Date.parse(old.expiresAt) - old.createdAt.getTime()) / DAY_MS),
  );
  return decideIssue(
    {
      id: newId,
      name: old.name,
      scopes: old.scopes,
      boundaries: old.boundaries,
      allowedCidrs: old.allowedCidrs,
      rateLimit: old.rateLimit,
      expiresInDays: Math.min(lifetimeDays, ctx.policy.maxKeyLifetimeDays[ctx.account.environment]),
    },
    ctx,
    old.id,
  );
}

export function decideRevoke(key: Key, cause: RevocationCause, emergency = false): KeyEvent[] {
  if (key.revokedAt) throw new Conflict(`key ${key.id} is revoked already`);
  return [{ type: 'KeyRevoked', data: { cause, emergency } }];
}

/**
 * The expiry sweep's decision: a key whose expiry or rotation grace has passed gets its
 * `KeyExpired`, once. Verify already refuses it by time; the event makes the fact part of history
 * (and of the read model, webhooks and reports).
 */
export function decideExpiry(key: Key, now: Date): KeyEvent[] {
  if (key.revokedAt || key.expiredAt) return [];
  return keyStatusAt(key, now) === 'expired' ? [{ type: 'KeyExpired', data: {} }] : [];
}

/** Revocation as a side effect of another decision (account deleted, break-glass): no error for a dead key. */
export function revokeIfLive(key: Key, now: Date, cause: RevocationCause): KeyEvent[] {
  return isLive(key, now)
    ? [{ type: 'KeyRevoked', data: { cause, emergency: cause === 'break-glass' } }]
    : [];
}

/** After the account's ceiling narrowed: drops every scope the new ceiling no longer covers. */
export function decideNarrowToCeiling(key: Key, ceiling: readonly string[]): KeyEvent[] {
  if (key.revokedAt) return [];
  const removed = key.scopes.filter((s) => !scopesCover(ceiling, s));
  return removed.length ? [{ type: 'KeyScopesNarrowed', data: { removed } }] : [];
}

/**
 * Someone found the key where it should not be. Always recorded; revoked in the same commit
 * unless the tenant's policy says only to flag it (or it is revoked already).
 */
export function decideExposure(
  key: Key,
  action: 'revoke' | 'flag',
  found: { url: string | null; source: string | null },
): KeyEvent[] {
  const exposed: KeyEvent = { type: 'KeyExposed', data: found };
  if (action === 'flag' || key.revokedAt) return [exposed];
  return [exposed, { type: 'KeyRevoked', data: { cause: 'exposed', emergency: true } }];
}
