import { sql, type Kysely } from 'kysely';

/**
 * The abuse-signal evaluation over `usage_minutes` (libs/signals usage-evaluation): where it has
 * got to. Each run moves the checkpoint in the same transaction as the signals it raised, with a
 * compare-and-set on the values it read, so a retried or concurrent run evaluates no minute twice.
 * Not a read model of events: a projection rebuild must leave it alone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table usage_evaluation_checkpoints (
      name            text primary key,
      -- The last minute (its start) evaluated in full.
      last_minute     timestamptz not null,
      -- Commits of the minute after last_minute already made: a minute with more signals than
      -- one commit holds is committed in parts, and a run resumed after a crash skips those.
      committed_parts integer not null default 0,
      updated_at      timestamptz not null
    )`.execute(db);
  // NEW_SOURCE asks, for each (key, source) used in a minute, whether the key was used from that
  // source in the 30 days before: without this, every active key's month of rows is scanned.
  await sql`create index usage_minutes_key_source on usage_minutes (key_id, source_ip, minute)`.execute(db);
  await sql`grant select, insert, update, delete on usage_evaluation_checkpoints to keyward_app`.execute(db);
}
