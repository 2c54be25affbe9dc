import { sql, type Kysely } from 'kysely';

/**
 * Scheduled rotation with secret delivery, and the sweeps around it. `keys.pending_replacement`
 * is the key a scheduled rotation issued and is still delivering: the old key stays fully valid
 * while it is set, and its grace starts only once the delivery is confirmed. Part of the keys
 * read model (rebuilt from KeyRotationStarted, KeyRotated and KeyRotationAbandoned).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table keys add column pending_replacement text`.execute(db);
  // The sweep looks for scheduled rotations left half-done by a crash.
  await sql`create index keys_pending_replacement on keys (pending_replacement) where pending_replacement is not null`.execute(
    db,
  );
  // The hygiene sweep asks which signals a batch of keys or accounts already had (any status).
  await sql`create index signals_subject on signals (subject, type)`.execute(db);
  // Deliveries still pending a minute on are queued again (their enqueue may have been lost).
  await sql`
    create index webhook_deliveries_pending on webhook_deliveries (created_at)
    where status = 'pending'`.execute(db);
}
