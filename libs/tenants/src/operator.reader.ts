import { sql } from 'kysely';
import { decodeCursor, isId, ID_PREFIX, toPage, type Page } from '@keyward/core';
import type { Db, OperatorRow, TenantRow } from '@keyward/db';

/** Queries over the `tenants` and `operators` read models. */
export class OperatorReader {
  constructor(private readonly db: Db) {}

  async tenant(id: string): Promise<TenantRow | undefined> {
    return this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The live operator holding the token with this SHA-256; how the auth guard finds a caller. */
  async byTokenHash(tokenHash: string): Promise<OperatorRow | undefined> {
    return this.db
      .selectFrom('operators')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('status', '=', 'active')
      .executeTakeFirst();
  }

  /** `tenantId` undefined: every tenant's (the bootstrap token's view). */
  async get(tenantId: string | undefined, id: string): Promise<OperatorRow | undefined> {
    if (!isId(id, ID_PREFIX.operator)) return undefined;
    let query = this.db.selectFrom('operators').selectAll().where('id', '=', id);
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    return query.executeTakeFirst();
  }

  async list(tenantId: string | undefined, limit: number, cursor?: string): Promise<Page<OperatorRow>> {
    let query = this.db.selectFrom('operators').selectAll().where('status', '=', 'active');
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    if (cursor) {
      const after = decodeCursor(cursor);
      query = query.where(sql<boolean>`(created_at, id) > (${after.createdAt}::timestamptz, ${after.id})`);
    }
    const rows = await query
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    const page = toPage(
      rows.map((row) => ({ row, createdAt: row.created_at, id: row.id })),
      limit,
    );
    return { items: page.items.map((p) => p.row), nextCursor: page.nextCursor };
  }
}
