import type { AccessAsOf, AccountAsOf, AttributedGrant, KeyAsOf } from '@keyward/replay';
import type { AccessView, AccountStateView, GrantingEventView, KeyStateView } from './replay.view';

/*
 * The replay answers built from the lib's results: plain functions with only type imports, so the
 * CLI renders the same JSON as the API without loading Nest or Swagger.
 */

function iso(date: Date | null): string | null {
  return date?.toISOString() ?? null;
}

export function keyStateView({ key, status }: KeyAsOf): KeyStateView {
  return {
    id: key.id,
    serviceAccountId: key.serviceAccountId,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    boundaries: key.boundaries,
    allowedCidrs: key.allowedCidrs,
    rateLimit: key.rateLimit,
    environment: key.environment,
    status,
    createdAt: key.createdAt.toISOString(),
    expiresAt: key.expiresAt,
    replaces: key.replaces,
    replacedBy: key.replacedBy,
    graceEndsAt: key.graceEndsAt,
    revokedAt: iso(key.revokedAt),
    version: key.version,
  };
}

export function accountStateView(state: AccountAsOf): AccountStateView {
  const { account } = state;
  return {
    id: account.id,
    tenantId: account.tenantId,
    name: account.name,
    environment: account.environment,
    description: account.description,
    intendedScope: account.intendedScope,
    businessOwner: account.businessOwner,
    technicalOwner: account.technicalOwner,
    allowedScopes: account.allowedScopes,
    boundaries: account.boundaries,
    allowedCidrs: account.allowedCidrs,
    abuseDetection: account.abuseDetection,
    rotationPolicy: account.rotationPolicy,
    // Only the URL, as the live view shows it: whatever else delivery holds is not for answers.
    secretDelivery: account.secretDelivery ? { url: account.secretDelivery.url } : null,
    status: account.status,
    activeKeyCount: state.activeKeyCount,
    createdAt: account.createdAt.toISOString(),
    updatedAt: account.updatedAt.toISOString(),
    version: account.version,
    keys: state.keys.map(keyStateView),
    asOf: state.asOf.toISOString(),
  };
}

function grantingEventView(event: AttributedGrant): GrantingEventView {
  return {
    position: Number(event.position),
    streamId: event.streamId,
    version: event.version,
    type: event.type,
    occurredAt: event.occurredAt.toISOString(),
    actor: { type: event.actor.type, id: event.actor.id, name: event.actor.name },
    reason: event.reason,
    correlationId: event.correlationId,
    scopes: event.scopes,
  };
}

export function accessView(
  scope: string,
  asOf: Date,
  items: readonly AccessAsOf<AttributedGrant>[],
  nextCursor: string | null = null,
): AccessView {
  return {
    nextCursor,
    scope,
    asOf: asOf.toISOString(),
    items: items.map((item) => ({
      account: { id: item.account.id, name: item.account.name, environment: item.account.environment },
      key: {
        id: item.key.id,
        prefix: item.key.prefix,
        name: item.key.name,
        status: item.status,
        expiresAt: item.key.expiresAt,
        graceEndsAt: item.key.graceEndsAt,
      },
      matchingScopes: item.matchingScopes,
      grantedBy: {
        ceiling: item.grantedBy.ceiling.map(grantingEventView),
        key: item.grantedBy.key.map(grantingEventView),
      },
    })),
  };
}
