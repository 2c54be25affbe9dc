import type { Transaction } from 'kysely';
import type { Database, KeyRow } from '@keyward/db';
import type { InlineProjection, PendingEvent } from '@keyward/event-store';
import { evolveKey, type Key, type KeyFact } from './key';
import { KEY_STREAM, isKeyEvent } from './key.events';
import { POLICY_STREAM, evolvePolicy, type PolicyEvent } from './policy';

/** Rows per upsert statement: 22 columns each, well under PostgreSQL's 65,535 parameters. */
const UPSERT_CHUNK = 1_000;

/** The `keys` read model, folded with the aggregate's own `evolveKey` (last use is usage's: key_usage). */
export const keysProjection: InlineProjection = {
  name: 'keys',
  tables: ['keys'],
  async apply(trx: Transaction<Database>, events: readonly PendingEvent[]): Promise<void> {
    const keyEvents = events.filter((e) => e.streamType === KEY_STREAM && isKeyEvent(e));
    if (keyEvents.length === 0) return;
    // One read of every key touched and one upsert of them all: a sweep expiring a thousand keys
    // in one append costs two statements here, not two thousand.
    const ids = [...new Set(keyEvents.map((e) => e.streamId))];
    const rows = await trx.selectFrom('keys').selectAll().where('id', 'in', ids).execute();
    const states = new Map<string, Key | null>(ids.map((id) => [id, null]));
    for (const row of rows) states.set(row.id, keyFromRow(row));
    for (const event of keyEvents) {
      const fact = { type: event.type, data: event.data, occurredAt: event.occurredAt } as KeyFact;
      states.set(event.streamId, evolveKey(states.get(event.streamId)!, fact));
    }
    const values = [...states.values()].filter((k): k is Key => k !== null).map(keyRow);
    for (let i = 0; i < values.length; i += UPSERT_CHUNK) {
      await trx
        .insertInto('keys')
        .values(values.slice(i, i + UPSERT_CHUNK))
        .onConflict((oc) =>
          oc.column('id').doUpdateSet((eb) => {
            const set: Record<string, unknown> = {};
            for (const column of Object.keys(values[0]))
              set[column] = eb.ref(`excluded.${column}` as 'excluded.id');
            return set as never;
          }),
        )
        .execute();
    }
  },
};

function keyRow(k: Key) {
  return {
    id: k.id,
    tenant_id: k.tenantId,
    service_account_id: k.serviceAccountId,
    name: k.name,
    prefix: k.prefix,
    secret_hash: k.secretHash,
    environment: k.environment,
    scopes: k.scopes,
    boundaries: k.boundaries,
    allowed_cidrs: k.allowedCidrs,
    rate_limit: JSON.stringify(k.rateLimit),
    expires_at: k.expiresAt,
    grace_ends_at: k.graceEndsAt,
    replaces: k.replaces,
    replaced_by: k.replacedBy,
    pending_replacement: k.pendingReplacement,
    revoked_at: k.revokedAt,
    expired_at: k.expiredAt,
    exposed_at: k.exposedAt,
    created_at: k.createdAt,
    updated_at: k.updatedAt,
    version: k.version,
  };
}

export function keyFromRow(row: KeyRow): Key {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    serviceAccountId: row.service_account_id,
    name: row.name,
    prefix: row.prefix,
    secretHash: row.secret_hash,
    environment: row.environment as Key['environment'],
    scopes: row.scopes,
    boundaries: row.boundaries,
    allowedCidrs: row.allowed_cidrs,
    rateLimit: row.rate_limit,
    expiresAt: row.expires_at.toISOString(),
    graceEndsAt: row.grace_ends_at?.toISOString() ?? null,
    replaces: row.replaces,
    replacedBy: row.replaced_by,
    pendingReplacement: row.pending_replacement,
    revokedAt: row.revoked_at,
    expiredAt: row.expired_at,
    exposedAt: row.exposed_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: row.version,
  };
}

/** `tenant_policies`: the changes a tenant made to the defaults, folded by `evolvePolicy`. */
export const policiesProjection: InlineProjection = {
  name: 'policies',
  tables: ['tenant_policies'],
  async apply(trx: Transaction<Database>, events: readonly PendingEvent[]): Promise<void> {
    for (const event of events) {
      if (event.streamType !== POLICY_STREAM) continue;
      const row = await trx
        .selectFrom('tenant_policies')
        .selectAll()
        .where('tenant_id', '=', event.tenantId)
        .executeTakeFirst();
      const policy = evolvePolicy(
        (row?.policy ?? {}) as Record<string, unknown>,
        event as unknown as PolicyEvent,
      );
      const values = {
        tenant_id: event.tenantId,
        policy: JSON.stringify(policy),
        updated_at: event.occurredAt,
        version: event.streamVersion,
      };
      await trx
        .insertInto('tenant_policies')
        .values(values)
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
        .execute();
    }
  },
};
