import { sql, type Kysely } from 'kysely';

/** Read models for keys and tenant policies (issue 3). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table keys (
      id                 text primary key,
      tenant_id          text not null,
      service_account_id text not null,
      name               text not null,
      prefix             text not null,
      secret_hash        text not null,
      environment        text not null,
      scopes             text[] not null,
      boundaries         text[] not null,
      allowed_cidrs      text[] not null,
      rate_limit         jsonb,
      expires_at         timestamptz not null,
      grace_ends_at      timestamptz,
      replaces           text,
      replaced_by        text,
      revoked_at         timestamptz,
      expired_at         timestamptz,
      exposed_at         timestamptz,
      created_at         timestamptz not null,
      updated_at         timestamptz not null,
      last_used_at       timestamptz,
      version            integer not null
    )`.execute(db);
  await sql`create index keys_account on keys (tenant_id, service_account_id, created_at, id)`.execute(db);
  await sql`create index keys_prefix on keys (tenant_id, prefix text_pattern_ops)`.execute(db);
  await sql`create index keys_secret_hash on keys (secret_hash)`.execute(db);

  await sql`
    create table tenant_policies (
      tenant_id  text primary key,
      policy     jsonb not null,
      updated_at timestamptz not null,
      version    integer not null
    )`.execute(db);

  // A live key count goes stale the moment a key expires by time; it is counted when read instead.
  await sql`alter table service_accounts drop column active_key_count`.execute(db);

  for (const table of ['keys', 'tenant_policies']) {
    await sql`grant select, insert, update, delete, truncate on ${sql.table(table)} to keyward_app`.execute(
      db,
    );
  }
}
