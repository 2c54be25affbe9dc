import type { Transaction } from 'kysely';
import type { Database, ServiceAccountRow } from '@keyward/db';
import type { InlineProjection, PendingEvent } from '@keyward/event-store';
import { evolve, type ServiceAccount, type ServiceAccountFact } from './service-account';
import { SERVICE_ACCOUNT_STREAM, isServiceAccountEvent } from './service-account.events';

/**
 * The `service_accounts` read model, folded with the aggregate's own `evolve`. Columns fed by
 * other streams (active key count, first and last use) are left to their own projections.
 */
export const serviceAccountsProjection: InlineProjection = {
  name: 'service-accounts',
  tables: ['service_accounts'],
  async apply(trx: Transaction<Database>, events: readonly PendingEvent[]): Promise<void> {
    const states = new Map<string, ServiceAccount | null>();
    for (const event of events) {
      if (event.streamType !== SERVICE_ACCOUNT_STREAM || !isServiceAccountEvent(event)) continue;
      if (!states.has(event.streamId)) {
        const row = await trx
          .selectFrom('service_accounts')
          .selectAll()
          .where('id', '=', event.streamId)
          .executeTakeFirst();
        states.set(event.streamId, row ? serviceAccountFromRow(row) : null);
      }
      const fact = { type: event.type, data: event.data, occurredAt: event.occurredAt } as ServiceAccountFact;
      states.set(event.streamId, evolve(states.get(event.streamId)!, fact));
    }
    for (const state of states.values()) {
      if (!state) continue;
      const row = serviceAccountRow(state);
      await trx
        .insertInto('service_accounts')
        .values(row)
        .onConflict((oc) => oc.column('id').doUpdateSet(row))
        .execute();
    }
  },
};

function serviceAccountRow(a: ServiceAccount) {
  return {
    id: a.id,
    tenant_id: a.tenantId,
    name: a.name,
    environment: a.environment,
    description: a.description,
    intended_scope: a.intendedScope,
    business_owner: a.businessOwner,
    technical_owner: a.technicalOwner,
    allowed_scopes: a.allowedScopes,
    boundaries: a.boundaries,
    allowed_cidrs: a.allowedCidrs,
    abuse_detection: a.abuseDetection,
    rotation_policy: JSON.stringify(a.rotationPolicy),
    secret_delivery_url: a.secretDelivery?.url ?? null,
    status: a.status,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    version: a.version,
  };
}

export function serviceAccountFromRow(row: ServiceAccountRow): ServiceAccount {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    environment: row.environment as ServiceAccount['environment'],
    description: row.description,
    intendedScope: row.intended_scope,
    businessOwner: row.business_owner,
    technicalOwner: row.technical_owner,
    allowedScopes: row.allowed_scopes,
    boundaries: row.boundaries,
    allowedCidrs: row.allowed_cidrs,
    abuseDetection: row.abuse_detection,
    rotationPolicy: row.rotation_policy,
    secretDelivery: row.secret_delivery_url ? { url: row.secret_delivery_url } : null,
    status: row.status as ServiceAccount['status'],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: row.version,
  };
}
