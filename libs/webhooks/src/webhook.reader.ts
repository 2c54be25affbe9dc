import { sql } from 'kysely';
import { decodeCursor, isId, toPage, type Page } from '@keyward/core';
import type { Db, Database } from '@keyward/db';
import type { Selectable } from 'kysely';
import { DELIVERY_ID_PREFIX, WEBHOOK_ID_PREFIX } from './payload';

export type WebhookRow = Selectable<Database['webhooks']>;
export type DeliveryRow = Omit<Selectable<Database['webhook_deliveries']>, 'body'>;

/** Queries over `webhooks` and `webhook_deliveries`, each bound to a tenant; never the secrets. */
export class WebhookReader {
  constructor(private readonly db: Db) {}

  async get(tenantId: string, id: string): Promise<WebhookRow | undefined> {
    if (!isId(id, WEBHOOK_ID_PREFIX)) return undefined;
    return this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  /** Oldest first, keyset paged over (created_at, id) like every other list. */
  async list(tenantId: string, limit: number, cursor?: string): Promise<Page<WebhookRow>> {
    let query = this.db.selectFrom('webhooks').selectAll().where('tenant_id', '=', tenantId);
    if (cursor) {
      const after = decodeCursor(cursor);
      query = query.where(sql<boolean>`(created_at, id) > (${after.createdAt}::timestamptz, ${after.id})`);
    }
    const rows = await query
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    return paged(rows, limit);
  }

  /** A webhook's deliveries, newest first: the question asked of them is "what happened lately". */
  async deliveries(
    tenantId: string,
    webhookId: string,
    limit: number,
    cursor?: string,
  ): Promise<Page<DeliveryRow>> {
    let query = this.db
      .selectFrom('webhook_deliveries')
      .select([
        'id',
        'tenant_id',
        'webhook_id',
        'event_id',
        'event',
        'status',
        'attempts',
        'last_status_code',
        'last_error',
        'created_at',
        'delivered_at',
      ])
      .where('tenant_id', '=', tenantId)
      .where('webhook_id', '=', webhookId);
    if (cursor) {
      const after = decodeCursor(cursor);
      if (!after.id.startsWith(DELIVERY_ID_PREFIX)) return { items: [], nextCursor: null };
      query = query.where(sql<boolean>`(created_at, id) < (${after.createdAt}::timestamptz, ${after.id})`);
    }
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    return paged(rows, limit);
  }
}

function paged<T extends { created_at: Date; id: string }>(rows: T[], limit: number): Page<T> {
  const page = toPage(
    rows.map((row) => ({ row, createdAt: row.created_at, id: row.id })),
    limit,
  );
  return { items: page.items.map((p) => p.row), nextCursor: page.nextCursor };
}
