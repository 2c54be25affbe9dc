import { sql, type Kysely } from 'kysely';

/**
 * The event store: one append-only table of events, a row per stream holding its current
 * version (optimistic concurrency without a global lock), and a chain head per tenant for the
 * tamper-evidence hash chain. See docs/ARCHITECTURE.md "Event store".
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table streams (
      stream_id   text primary key,
      tenant_id   text not null,
      stream_type text not null,
      version     bigint not null check (version > 0)
    )`.execute(db);

  await sql`
    create table events (
      position       bigint generated always as identity primary key,
      -- Commit order for readers: positions are handed out before commit, transaction ids let a
      -- reader hold back until every earlier transaction has finished.
      transaction_id xid8 not null default pg_current_xact_id(),
      tenant_id      text not null,
      stream_id      text not null,
      stream_type    text not null,
      stream_version bigint not null,
      event_id       uuid not null unique,
      type           text not null,
      schema_version integer not null,
      data           jsonb not null,
      metadata       jsonb not null,
      occurred_at    timestamptz not null,
      chain_seq      bigint not null,
      prev_hash      text not null,
      hash           text not null,
      unique (stream_id, stream_version),
      unique (tenant_id, chain_seq)
    )`.execute(db);
  await sql`create index events_feed on events (transaction_id, position)`.execute(db);
  await sql`create index events_tenant_position on events (tenant_id, position)`.execute(db);
  await sql`create index events_correlation on events ((metadata->>'correlationId'))`.execute(db);

  await sql`
    create table chain_heads (
      tenant_id text primary key,
      seq       bigint not null,
      hash      text not null
    )`.execute(db);

  await sql`
    create table projection_checkpoints (
      name           text primary key,
      transaction_id xid8 not null,
      position       bigint not null,
      updated_at     timestamptz not null default now()
    )`.execute(db);

  // Append-only in fact, for every role including the owner: only a superuser who first
  // disables the trigger can change history, and the hash chain then shows it.
  await sql`
    create function events_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'events are append-only: % refused', tg_op using errcode = 'P0001';
    end $$`.execute(db);
  await sql`
    create trigger events_append_only before update or delete on events
    for each row execute function events_refuse_change()`.execute(db);
  await sql`
    create trigger events_no_truncate before truncate on events
    for each statement execute function events_refuse_change()`.execute(db);

  // The role the application should log in as (a member of keyward_app) may read and append
  // events, never rewrite them.
  await sql`
    do $$ begin
      if not exists (select 1 from pg_roles where rolname = 'keyward_app') then
        create role keyward_app nologin;
      end if;
    end $$`.execute(db);
  await sql`revoke all on events from public`.execute(db);
  await sql`grant select, insert on events to keyward_app`.execute(db);
  await sql`grant select, insert, update on streams, chain_heads, projection_checkpoints to keyward_app`.execute(
    db,
  );
}
