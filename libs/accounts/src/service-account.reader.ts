import { sql, type ExpressionBuilder } from 'kysely';
import { decodeCursor, isId, ID_PREFIX, toPage, type Clock, type Page } from '@keyward/core';
import type { Database, Db, ServiceAccountRow } from '@keyward/db';
import { keyIsLive } from '@keyward/keys';

export interface ServiceAccountFilter {
  environment?: string;
  status?: string;
  /** Matches either owner exactly. */
  owner?: string;
  /** Case-insensitive substring of name, description or intended scope. */
  q?: string;
  limit: number;
  cursor?: string;
}

/** A row with what other streams add to it: how many live keys the account holds right now. */
export type ServiceAccountListing = ServiceAccountRow & {
  active_key_count: number;
  first_seen_at: Date | null;
  last_seen_at: Date | null;
};

/** Queries over the `service_accounts` read model; every one is bound to a tenant. */
export class ServiceAccountReader {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /**
   * Accounts with their live key count at this moment (keys expire by time, so it is never
   * stored) and their first and last use (kept by usage, beside the read model).
   */
  private accounts() {
    const now = this.clock.now();
    return this.db
      .selectFrom('service_accounts')
      .leftJoin('account_usage as u', 'u.service_account_id', 'service_accounts.id')
      .selectAll('service_accounts')
      .select(['u.first_seen_at', 'u.last_seen_at'])
      .select((eb) =>
        eb
          .selectFrom('keys')
          .select((k) => k.fn.countAll<string>().as('n'))
          .whereRef('keys.service_account_id', '=', 'service_accounts.id')
          .where((k) => keyIsLive(k as unknown as ExpressionBuilder<Database, 'keys'>, now))
          .as('active_key_count'),
      );
  }

  private static listing(
    row: Omit<ServiceAccountListing, 'active_key_count'> & { active_key_count: string | null },
  ): ServiceAccountListing {
    return { ...row, active_key_count: Number(row.active_key_count ?? 0) };
  }

  /** The account in this tenant, or undefined: another tenant's account is as absent as a missing one. */
  async get(tenantId: string, id: string): Promise<ServiceAccountListing | undefined> {
    if (!isId(id, ID_PREFIX.serviceAccount)) return undefined;
    const row = await this.accounts()
      .where('service_accounts.tenant_id', '=', tenantId)
      .where('service_accounts.id', '=', id)
      .executeTakeFirst();
    return row && ServiceAccountReader.listing(row);
  }

  /** Another live account of this tenant and environment already using `name`. */
  async nameTaken(tenantId: string, environment: string, name: string, exceptId?: string): Promise<boolean> {
    let query = this.db
      .selectFrom('service_accounts')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('environment', '=', environment)
      .where('name', '=', name)
      .where('status', '<>', 'deleted');
    if (exceptId) query = query.where('id', '<>', exceptId);
    return (await query.executeTakeFirst()) !== undefined;
  }

  async list(tenantId: string, filter: ServiceAccountFilter): Promise<Page<ServiceAccountListing>> {
    let query = this.accounts().where('tenant_id', '=', tenantId);
    // Deleted accounts are history: listed only when asked for by status.
    query = filter.status
      ? query.where('status', '=', filter.status)
      : query.where('status', '<>', 'deleted');
    if (filter.environment) query = query.where('environment', '=', filter.environment);
    if (filter.owner) {
      const owner = filter.owner;
      query = query.where((eb) =>
        eb.or([eb('business_owner', '=', owner), eb('technical_owner', '=', owner)]),
      );
    }
    if (filter.q) {
      const pattern = `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query = query.where((eb) =>
        eb.or([
          eb('name', 'ilike', pattern),
          eb('description', 'ilike', pattern),
          eb('intended_scope', 'ilike', pattern),
        ]),
      );
    }
    if (filter.cursor) {
      const { createdAt, id } = decodeCursor(filter.cursor);
      query = query.where(sql<boolean>`(created_at, id) > (${createdAt}::timestamptz, ${id})`);
    }
    const rows = await query
      .orderBy('created_at')
      .orderBy('id')
      .limit(filter.limit + 1)
      .execute();
    const page = toPage(
      rows.map((row) => ({ row, createdAt: row.created_at, id: row.id })),
      filter.limit,
    );
    return { items: page.items.map((p) => ServiceAccountReader.listing(p.row)), nextCursor: page.nextCursor };
  }
}
