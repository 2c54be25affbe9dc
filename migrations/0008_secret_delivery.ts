import { sql, type Kysely } from 'kysely';

/**
 * The signing secret of each service account's `secretDelivery`, encrypted like a webhook's (see
 * 0007_webhooks). It cannot be derived from events (a secret must never be in one), so it is no
 * read model: a rebuild of `service_accounts` leaves it alone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // No foreign key to service_accounts: the secret is written by the append's guard, before the
  // inline projections insert the account row, and a rebuild swaps service_accounts but must keep it.
  await sql`
    create table secret_delivery_secrets (
      service_account_id text primary key,
      tenant_id          text not null,
      ciphertext         text not null,
      created_at         timestamptz not null
    )`.execute(db);

  // Never truncated.
  await sql`grant select, insert, update, delete on secret_delivery_secrets to keyward_app`.execute(db);
}
