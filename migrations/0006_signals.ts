import { sql, type Kysely } from 'kysely';

/**
 * Signals (API.md "Usage, signals, reports"): the read model of the signal streams. The partial
 * unique index is what makes "raised once, counted after that" hold under concurrency: of two
 * raises racing to open a signal for the same (tenant, type, key-or-account), only one commits.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table signals (
      id                 text primary key,
      tenant_id          text not null,
      type               text not null,
      severity           text not null,
      status             text not null,
      service_account_id text not null,
      key_id             text,
      subject            text not null,
      detail             jsonb not null,
      count              integer not null,
      first_seen_at      timestamptz not null,
      last_seen_at       timestamptz not null,
      acknowledged_at    timestamptz,
      acknowledged_note  text,
      resolved_at        timestamptz,
      resolved_note      text,
      auto_resolved      boolean not null,
      version            integer not null
    )`.execute(db);
  await sql`
    create unique index signals_unresolved on signals (tenant_id, type, subject)
    where status <> 'resolved'`.execute(db);
  // The feed lists newest first within a tenant; filters narrow that walk.
  await sql`create index signals_feed on signals (tenant_id, first_seen_at desc, id desc)`.execute(db);
  await sql`create index signals_account on signals (service_account_id)`.execute(db);
  await sql`grant select, insert, update, delete, truncate on signals to keyward_app`.execute(db);
}
