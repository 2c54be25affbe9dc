import type { Transaction } from 'kysely';
import type { Database, OperatorRow } from '@keyward/db';
import type { InlineProjection, PendingEvent } from '@keyward/event-store';
import {
  OPERATOR_STREAM,
  TENANT_STREAM,
  evolveOperator,
  type Operator,
  type OperatorEvent,
  type TenantEvent,
} from './tenant';

/** Keeps `tenants` and `operators` (with the token hash the auth guard looks up) current. */
export const tenantsProjection: InlineProjection = {
  name: 'tenants',
  tables: ['tenants', 'operators'],
  // A tenant's own row is named by its id.
  tenantColumns: { tenants: 'id' },
  async apply(trx: Transaction<Database>, events: readonly PendingEvent[]): Promise<void> {
    for (const event of events) {
      if (event.streamType === TENANT_STREAM) {
        const e = event as unknown as TenantEvent & PendingEvent;
        if (e.type === 'TenantCreated') {
          await trx
            .insertInto('tenants')
            .values({
              id: e.data.id,
              name: e.data.name,
              created_at: event.occurredAt,
              version: event.streamVersion,
            })
            .execute();
        }
      } else if (event.streamType === OPERATOR_STREAM) {
        const current = await trx
          .selectFrom('operators')
          .selectAll()
          .where('id', '=', event.streamId)
          .executeTakeFirst();
        const next = evolveOperator(
          current ? fromRow(current) : null,
          event as unknown as OperatorEvent & PendingEvent,
        );
        await trx
          .insertInto('operators')
          .values(toRow(next))
          .onConflict((oc) => oc.column('id').doUpdateSet(toRow(next)))
          .execute();
      }
    }
  },
};

function toRow(o: Operator) {
  return {
    id: o.id,
    tenant_id: o.tenantId,
    name: o.name,
    role: o.role,
    token_hash: o.tokenHash,
    token_prefix: o.tokenPrefix,
    status: o.status,
    created_at: o.createdAt,
    deleted_at: o.deletedAt,
    version: o.version,
  };
}

export function fromRow(row: OperatorRow): Operator {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    role: row.role as Operator['role'],
    tokenHash: row.token_hash,
    tokenPrefix: row.token_prefix,
    status: row.status as Operator['status'],
    createdAt: row.created_at,
    deletedAt: row.deleted_at,
    version: row.version,
  };
}
