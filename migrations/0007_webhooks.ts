import { sql, type Kysely } from 'kysely';

/**
 * Webhooks. `webhooks` is the read model of the `webhook` streams (rebuilt from events).
 * `webhook_secrets` holds each signing secret encrypted, and `webhook_deliveries` the outbox of
 * deliveries: neither can be derived from events (a secret must never be in one), so a rebuild of
 * `webhooks` leaves them alone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table webhooks (
      id         text primary key,
      tenant_id  text not null,
      url        text not null,
      events     text[] not null,
      created_at timestamptz not null
    )`.execute(db);
  await sql`create index webhooks_tenant on webhooks (tenant_id, created_at, id)`.execute(db);

  // No foreign key to webhooks: the secret is written by the append's guard, before the inline
  // projections insert the webhook row, and a rebuild truncates webhooks but must keep secrets.
  await sql`
    create table webhook_secrets (
      webhook_id text primary key,
      tenant_id  text not null,
      ciphertext text not null,
      created_at timestamptz not null
    )`.execute(db);

  await sql`
    create table webhook_deliveries (
      id               text primary key,
      tenant_id        text not null,
      webhook_id       text not null,
      event_id         uuid not null,
      event            text not null,
      body             text not null,
      status           text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
      attempts         integer not null default 0,
      last_status_code integer,
      last_error       text,
      created_at       timestamptz not null,
      delivered_at     timestamptz,
      unique (webhook_id, event_id)
    )`.execute(db);
  await sql`
    create index webhook_deliveries_newest on webhook_deliveries (webhook_id, created_at desc, id desc)
  `.execute(db);

  // A rebuild truncates the read model; the other two are never truncated.
  await sql`grant select, insert, update, delete, truncate on webhooks to keyward_app`.execute(db);
  for (const table of ['webhook_secrets', 'webhook_deliveries']) {
    await sql`grant select, insert, update, delete on ${sql.table(table)} to keyward_app`.execute(db);
  }
}
