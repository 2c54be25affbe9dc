import { sql, type ExpressionBuilder, type Expression, type SqlBool, type Transaction } from 'kysely';
import { Forbidden, decodeCursor, isId, ID_PREFIX, toPage, type Page } from '@keyward/core';
import type { Database, Db, KeyRow } from '@keyward/db';
import type { Caller } from '@keyward/auth';
import { reachOfKey, type Reach } from './delegation';
import { DEFAULT_POLICY, type TenantPolicy } from './policy';
import type { KeyRecord } from './verify';

/**
 * `keyStatusAt(key, now)` in ('active', 'rotating'), as SQL over the `keys` table: the same rule,
 * for queries that count or list live keys. Change both together.
 */
export function keyIsLive(eb: ExpressionBuilder<Database, 'keys'>, now: Date): Expression<SqlBool> {
  return eb.and([
    eb('keys.revoked_at', 'is', null),
    eb('keys.expired_at', 'is', null),
    eb('keys.expires_at', '>', now),
    eb.or([eb('keys.grace_ends_at', 'is', null), eb('keys.grace_ends_at', '>', now)]),
  ]);
}

/** Live keys of an account now, read with the given executor (a transaction, for guards). */
export async function liveKeyCount(
  executor: Db | Transaction<Database>,
  accountId: string,
  now: Date,
): Promise<number> {
  const row = await executor
    .selectFrom('keys')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('service_account_id', '=', accountId)
    .where((eb) => keyIsLive(eb, now))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A key row with its last use (kept by usage, beside the read model so a rebuild keeps it). */
export type KeyListing = KeyRow & { last_used_at: Date | null };

/** Queries over the `keys` and `tenant_policies` read models; each bound to a tenant. */
export class KeyReader {
  constructor(private readonly db: Db) {}

  private listings() {
    return this.db
      .selectFrom('keys')
      .leftJoin('key_usage', 'key_usage.key_id', 'keys.id')
      .selectAll('keys')
      .select('key_usage.last_used_at');
  }

  async get(tenantId: string, id: string): Promise<KeyListing | undefined> {
    if (!isId(id, ID_PREFIX.key)) return undefined;
    return this.listings()
      .where('keys.tenant_id', '=', tenantId)
      .where('keys.id', '=', id)
      .executeTakeFirst();
  }

  async byAccount(
    tenantId: string,
    accountId: string,
    limit: number,
    cursor?: string,
  ): Promise<Page<KeyListing>> {
    return this.paged(
      this.listings().where('keys.tenant_id', '=', tenantId).where('keys.service_account_id', '=', accountId),
      limit,
      cursor,
    );
  }

  /** Keys whose visible prefix starts with `prefix` (incident response: a prefix seen in a log). */
  async byPrefix(
    tenantId: string,
    prefix: string,
    limit: number,
    cursor?: string,
  ): Promise<Page<KeyListing>> {
    const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return this.paged(
      this.listings().where('keys.tenant_id', '=', tenantId).where('keys.prefix', 'like', pattern),
      limit,
      cursor,
    );
  }

  /** Keyset paging over (created_at, id), the order every key list answers in. */
  private async paged(
    query: ReturnType<KeyReader['listings']>,
    limit: number,
    cursor?: string,
  ): Promise<Page<KeyListing>> {
    if (cursor) {
      const after = decodeCursor(cursor);
      query = query.where(
        sql<boolean>`(keys.created_at, keys.id) > (${after.createdAt}::timestamptz, ${after.id})`,
      );
    }
    const rows = await query
      .orderBy('keys.created_at')
      .orderBy('keys.id')
      .limit(limit + 1)
      .execute();
    const page = toPage(
      rows.map((row) => ({ row, createdAt: row.created_at, id: row.id })),
      limit,
    );
    return { items: page.items.map((p) => p.row), nextCursor: page.nextCursor };
  }

  async liveKeys(accountId: string, now: Date): Promise<KeyRow[]> {
    return this.db
      .selectFrom('keys')
      .selectAll()
      .where('service_account_id', '=', accountId)
      .where((eb) => keyIsLive(eb, now))
      .execute();
  }

  /** Every key of the account that has not been revoked, live or not (for scope narrowing). */
  async unrevokedKeys(accountId: string): Promise<KeyRow[]> {
    return this.db
      .selectFrom('keys')
      .selectAll()
      .where('service_account_id', '=', accountId)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async byHash(tenantId: string, secretHash: string): Promise<KeyRow | undefined> {
    return this.db
      .selectFrom('keys')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('secret_hash', '=', secretHash)
      .executeTakeFirst();
  }

  /**
   * The key with this id and its account, as the verifier needs them: one indexed read. In any
   * tenant (key ids are unique), so a key can authenticate before its tenant is known; the
   * verifier compares tenants itself.
   */
  async record(keyId: string): Promise<KeyRecord | null> {
    const row = await this.db
      .selectFrom('keys')
      .innerJoin('service_accounts as a', 'a.id', 'keys.service_account_id')
      .select([
        'keys.id',
        'keys.tenant_id',
        'keys.service_account_id',
        'keys.secret_hash',
        'keys.environment',
        'keys.scopes',
        'keys.boundaries',
        'keys.allowed_cidrs',
        'keys.rate_limit',
        'keys.expires_at',
        'keys.grace_ends_at',
        'keys.revoked_at',
        'keys.expired_at',
        'a.name as account_name',
        'a.environment as account_environment',
        'a.status as account_status',
        'a.boundaries as account_boundaries',
        'a.allowed_cidrs as account_cidrs',
      ])
      .where('keys.id', '=', keyId)
      .executeTakeFirst();
    if (!row) return null;
    return {
      key: {
        id: row.id,
        tenantId: row.tenant_id,
        serviceAccountId: row.service_account_id,
        secretHash: row.secret_hash,
        environment: row.environment as KeyRecord['key']['environment'],
        scopes: row.scopes,
        boundaries: row.boundaries,
        allowedCidrs: row.allowed_cidrs,
        rateLimit: row.rate_limit,
        expiresAt: row.expires_at.toISOString(),
        graceEndsAt: row.grace_ends_at?.toISOString() ?? null,
        revokedAt: row.revoked_at,
        expiredAt: row.expired_at,
      },
      account: {
        id: row.service_account_id,
        name: row.account_name,
        environment: row.account_environment,
        status: row.account_status,
        boundaries: row.account_boundaries,
        allowedCidrs: row.account_cidrs,
      },
    };
  }

  /**
   * How far the key a service-account caller authenticated with reaches now: what it may hand on
   * (delegation.ts). Read afresh, so a scope narrowed since the key authenticated is not handed on.
   */
  async keyReach(caller: Extract<Caller, { kind: 'service-account' }>): Promise<Reach> {
    const record = await this.record(caller.keyId);
    if (!record || record.key.tenantId !== caller.tenantId) {
      throw new Forbidden(`the key ${caller.keyId} that is calling no longer exists`);
    }
    return reachOfKey(record.key, record.account);
  }

  async policy(tenantId: string): Promise<{ policy: TenantPolicy; version: number }> {
    const row = await this.db
      .selectFrom('tenant_policies')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    return row
      ? { policy: { ...DEFAULT_POLICY, ...(row.policy as Partial<TenantPolicy>) }, version: row.version }
      : { policy: DEFAULT_POLICY, version: 0 };
  }
}
