import { sql, type Kysely } from 'kysely';

/**
 * Usage: verification counts per minute, and the last use of each key and account. These are
 * not read models of events (a rebuild must not wipe them), so they live in tables of their own,
 * and the read models' own columns for them go.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table usage_minutes (
      tenant_id          text not null,
      minute             timestamptz not null,
      key_id             text not null,
      service_account_id text not null,
      code               text not null,
      source_ip          text not null,
      system             text not null,
      count              bigint not null,
      primary key (tenant_id, minute, key_id, code, source_ip, system)
    )`.execute(db);
  await sql`create index usage_minutes_key on usage_minutes (key_id, minute)`.execute(db);
  await sql`create index usage_minutes_account on usage_minutes (service_account_id, minute)`.execute(db);

  // A flushed batch is recorded in the flush's own transaction: a retried flush skips it.
  await sql`create table usage_batches (batch text primary key, applied_at timestamptz not null)`.execute(db);

  await sql`
    create table key_usage (
      key_id       text primary key,
      last_used_at timestamptz not null
    )`.execute(db);
  await sql`
    create table account_usage (
      service_account_id text primary key,
      first_seen_at      timestamptz not null,
      last_seen_at       timestamptz not null
    )`.execute(db);

  await sql`alter table keys drop column last_used_at`.execute(db);
  await sql`alter table service_accounts drop column first_seen_at, drop column last_seen_at`.execute(db);

  for (const table of ['usage_minutes', 'usage_batches', 'key_usage', 'account_usage']) {
    await sql`grant select, insert, update, delete on ${sql.table(table)} to keyward_app`.execute(db);
  }
}
