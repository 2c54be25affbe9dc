import { sql, type Kysely } from 'kysely';

/** Read models written by the inline projections; disposable, rebuilt from events on demand. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenants (
      id         text primary key,
      name       text not null,
      created_at timestamptz not null,
      version    integer not null
    )`.execute(db);

  await sql`
    create table operators (
      id           text primary key,
      tenant_id    text not null,
      name         text not null,
      role         text not null,
      token_hash   text not null unique,
      token_prefix text not null,
      status       text not null,
      created_at   timestamptz not null,
      deleted_at   timestamptz,
      version      integer not null
    )`.execute(db);
  await sql`create index operators_tenant on operators (tenant_id, created_at, id)`.execute(db);

  await sql`
    create table service_accounts (
      id                  text primary key,
      tenant_id           text not null,
      name                text not null,
      environment         text not null,
      description         text,
      intended_scope      text,
      business_owner      text not null,
      technical_owner     text not null,
      allowed_scopes      text[] not null,
      boundaries          text[] not null,
      allowed_cidrs       text[] not null,
      abuse_detection     boolean not null,
      rotation_policy     jsonb,
      secret_delivery_url text,
      status              text not null,
      active_key_count    integer not null default 0,
      created_at          timestamptz not null,
      updated_at          timestamptz not null,
      first_seen_at       timestamptz,
      last_seen_at        timestamptz,
      version             integer not null
    )`.execute(db);
  // Backstop for the handler's own check: a name is unique per tenant and environment among
  // accounts that are not deleted, even when two creates race.
  await sql`
    create unique index service_accounts_name on service_accounts (tenant_id, environment, name)
    where status <> 'deleted'`.execute(db);
  await sql`create index service_accounts_list on service_accounts (tenant_id, created_at, id)`.execute(db);

  for (const table of ['tenants', 'operators', 'service_accounts']) {
    await sql`grant select, insert, update, delete, truncate on ${sql.table(table)} to keyward_app`.execute(
      db,
    );
  }
}
