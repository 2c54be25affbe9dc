import { sql } from 'kysely';
import { decodeCursor, isId, toPage, type Page } from '@keyward/core';
import type { Db } from '@keyward/db';
import { SIGNAL_ID_PREFIX, type SignalSeverity, type SignalStatus, type SignalType } from './signal.events';
import { signalFromRow, type SignalRow } from './signals.projection';
import type { Signal } from './signal';

export interface SignalFilter {
  status?: SignalStatus;
  severity?: SignalSeverity;
  serviceAccountId?: string;
  type?: SignalType;
}

/** A signal with the account it is about, as the feed shows it. */
export interface SignalListing extends Signal {
  serviceAccount: { id: string; name: string | null; environment: string | null };
}

type Listed = SignalRow & { account_name: string | null; account_environment: string | null };

/** Queries over the `signals` read model; each bound to a tenant. */
export class SignalReader {
  constructor(private readonly db: Db) {}

  private listings() {
    return this.db
      .selectFrom('signals')
      .leftJoin('service_accounts', 'service_accounts.id', 'signals.service_account_id')
      .selectAll('signals')
      .select([
        'service_accounts.name as account_name',
        'service_accounts.environment as account_environment',
      ]);
  }

  async get(tenantId: string, id: string): Promise<SignalListing | undefined> {
    if (!isId(id, SIGNAL_ID_PREFIX)) return undefined;
    const row = await this.listings()
      .where('signals.tenant_id', '=', tenantId)
      .where('signals.id', '=', id)
      .executeTakeFirst();
    return row && listing(row);
  }

  /** The open or acknowledged signal of this type on this subject (at most one: signals_unresolved). */
  async unresolved(tenantId: string, type: SignalType, subject: string): Promise<Signal | null> {
    const row = await this.db
      .selectFrom('signals')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('type', '=', type)
      .where('subject', '=', subject)
      .where('status', '<>', 'resolved')
      .executeTakeFirst();
    return row ? signalFromRow(row) : null;
  }

  /**
   * Newest first by first sighting, keyset-paged over (first_seen_at, id): a signal counted
   * again keeps its place, so paging never skips or repeats one.
   */
  async list(
    tenantId: string,
    filter: SignalFilter,
    limit: number,
    cursor?: string,
  ): Promise<Page<SignalListing>> {
    let query = this.listings().where('signals.tenant_id', '=', tenantId);
    if (filter.status) query = query.where('signals.status', '=', filter.status);
    if (filter.severity) query = query.where('signals.severity', '=', filter.severity);
    if (filter.serviceAccountId)
      query = query.where('signals.service_account_id', '=', filter.serviceAccountId);
    if (filter.type) query = query.where('signals.type', '=', filter.type);
    if (cursor) {
      const before = decodeCursor(cursor);
      query = query.where(
        sql<boolean>`(signals.first_seen_at, signals.id) < (${before.createdAt}::timestamptz, ${before.id})`,
      );
    }
    const rows = await query
      .orderBy('signals.first_seen_at', 'desc')
      .orderBy('signals.id', 'desc')
      .limit(limit + 1)
      .execute();
    const page = toPage(
      rows.map((row) => ({ row, createdAt: row.first_seen_at, id: row.id })),
      limit,
    );
    return { items: page.items.map((p) => listing(p.row)), nextCursor: page.nextCursor };
  }
}

function listing(row: Listed): SignalListing {
  return {
    ...signalFromRow(row),
    serviceAccount: {
      id: row.service_account_id,
      name: row.account_name,
      environment: row.account_environment,
    },
  };
}
