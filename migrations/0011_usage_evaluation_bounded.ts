import { sql, type Kysely } from 'kysely';

/**
 * The usage evaluation reads one minute at a time, at a cost bounded by that minute's rows:
 *
 * - `usage_minutes_minute` finds a minute's rows across tenants (the primary key leads with the
 *   tenant, so without it every detector scanned the table).
 * - `usage_minutes_allowed` (allowed calls by key and minute, covering tenant and count) answers
 *   "has this key history older than a day" and the day's baseline of VOLUME_SPIKE from the index
 *   alone. Without it the planner answered the history question from the primary key, scanning
 *   the tenant's whole history older than a day once per (key, source) of the minute: a key seen
 *   from 20,000 sources ran past the 30 s statement timeout, every run, for good.
 * - `usage_minutes_allowed_source` replaces `usage_minutes_key_source` with the allowed calls
 *   only, the only ones NEW_SOURCE asks about, covering the tenant.
 *
 * And `usage_evaluation_skips` records each minute a detector could not evaluate (it threw or ran
 * past its budget): the checkpoint moves on without that detector's sightings, visibly (the API's
 * /metrics counts the rows by detector and reason). Not a read model of events: a projection
 * rebuild leaves it alone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index usage_minutes_minute on usage_minutes (minute)`.execute(db);
  await sql`
    create index usage_minutes_allowed on usage_minutes (key_id, minute) include (tenant_id, count)
    where code = 'ALLOWED'`.execute(db);
  await sql`
    create index usage_minutes_allowed_source on usage_minutes (key_id, source_ip, minute) include (tenant_id)
    where code = 'ALLOWED'`.execute(db);
  await sql`drop index usage_minutes_key_source`.execute(db);

  await sql`
    create table usage_evaluation_skips (
      minute     timestamptz not null,
      detector   text not null,
      reason     text not null check (reason in ('timeout', 'failed')),
      error      text not null,
      skipped_at timestamptz not null,
      primary key (minute, detector)
    )`.execute(db);
  await sql`grant select, insert, update, delete on usage_evaluation_skips to keyward_app`.execute(db);
}
