import { sql, type Kysely } from 'kysely';

/**
 * As-of replay (GET /v1/service-accounts/{id}/state, GET /v1/access) finds an account's key streams
 * by the account id their KeyIssued carries, and a tenant's issued keys, without a read model.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create index events_key_issued on events (tenant_id, (data->>'serviceAccountId'))
    where stream_type = 'key' and type = 'KeyIssued'`.execute(db);
}
