import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, Db } from '@keyward/db';
import { toRecordedEvent, type InlineProjection } from '@keyward/event-store';

export interface RebuildResult {
  projection: string;
  /** The one tenant whose rows were rebuilt; null: every tenant's. */
  tenantId: string | null;
  events: number;
}

export interface RebuildOptions {
  batchSize?: number;
  /** Rebuild this tenant's rows only, from its own events; absent: every tenant's rows. */
  tenantId?: string;
}

/** Events replayed per transaction while building beside. */
const DEFAULT_BATCH = 1000;

interface Checkpoint {
  transactionId: string;
  position: string;
}

const START: Checkpoint = { transactionId: '0', position: '0' };

/** What one rebuild replays: which projection, into which schema of copies, whose events. */
interface Replay {
  projection: InlineProjection;
  schema: string;
  /** Only this tenant's events; null: every event. */
  tenantId: string | null;
  batchSize: number;
}

/**
 * Rebuilds a projection from position 0 without stopping the API: build beside, then swap. With
 * `tenantId`, only that tenant's rows, from that tenant's events (see `finishTenant`).
 *
 * 1. Empty copies of the projection's tables are made in a schema of their own.
 * 2. Every event is replayed into the copies in commit order, in batches of their own
 *    transactions, while the live tables go on serving reads and taking appends. Projections
 *    write unqualified table names, so `search_path` points them at the copies.
 * 3. The swap: the live tables are locked, the events committed since the last batch are
 *    replayed, and the copies take the live tables' place. Readers wait for that moment only;
 *    they never see an empty or a half-built table. Appends that wanted the lock then apply on
 *    top of the new tables.
 *
 * One rebuild of a projection at a time, whole or of one tenant (a session advisory lock); a
 * second one waits. Needs the role that owns the tables (the migration role), as moving tables
 * between schemas does.
 */
export async function rebuildProjection(
  db: Db,
  projection: InlineProjection,
  onProgress?: (events: number) => void,
  options: RebuildOptions = {},
): Promise<RebuildResult> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const tenantId = options.tenantId ?? null;
  return db.connection().execute(async (conn) => {
    const lockKey = `keyward:rebuild:${projection.name}`;
    await sql`select pg_advisory_lock(hashtext(${lockKey}))`.execute(conn);
    const suffix = `${projection.name.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
    const beside = `kw_rebuild_${suffix}`;
    const retired = `kw_retired_${suffix}`;
    const replay: Replay = { projection, schema: beside, tenantId, batchSize };
    try {
      await createCopies(conn, projection, beside);
      let events = 0;
      let after = START;
      // Catch up in batches until nothing is left: the swap then has only what arrives meanwhile.
      for (;;) {
        const batch = await conn
          .transaction()
          .execute((trx) => replayBatch(trx, replay, after, { committedOnly: true }));
        events += batch.events;
        after = batch.after;
        if (batch.events > 0) onProgress?.(events);
        if (batch.events === 0) break;
      }
      for (let attempt = 1; ; attempt++) {
        try {
          events += await conn
            .transaction()
            .execute((trx) =>
              tenantId === null
                ? finish(trx, replay, retired, after)
                : finishTenant(trx, replay, tenantId, after),
            );
          break;
        } catch (error) {
          // The swap lost a deadlock to an append (PostgreSQL aborted it, nothing was swapped):
          // the copies are still good, so try again.
          if (attempt >= 5 || (error as { code?: string }).code !== '40P01') throw error;
        }
      }
      onProgress?.(events);
      return { projection: projection.name, tenantId, events };
    } finally {
      await sql`drop schema if exists ${sql.id(beside)} cascade`.execute(conn);
      await sql`drop schema if exists ${sql.id(retired)} cascade`.execute(conn);
      await sql`select pg_advisory_unlock(hashtext(${lockKey}))`.execute(conn);
    }
  });
}

/**
 * The swap's transaction. ACCESS EXCLUSIVE is taken at once rather than upgraded from a weaker
 * lock: an append holding a read lock on the table and waiting to write would otherwise deadlock
 * with the upgrade; asked for up front, PostgreSQL lets that append finish first. Readers wait
 * from here to the commit: the few events of the last moments, and the renames.
 */
async function finish(
  trx: Transaction<Database>,
  replay: Replay,
  retired: string,
  from: Checkpoint,
): Promise<number> {
  const { projection } = replay;
  await lockTables(trx, projection, 'access exclusive');
  const { events, after } = await replayRest(trx, replay, from);
  await swap(trx, projection, replay.schema, retired);
  // Where the rebuild ended, for `projections status`; named apart from async projections'
  // own checkpoints in the same table.
  await trx
    .insertInto('projection_checkpoints')
    .values({
      name: `rebuild:${projection.name}`,
      transaction_id: after.transactionId,
      position: after.position,
      updated_at: sql<Date>`now()`,
    })
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({
        transaction_id: sql`excluded.transaction_id`,
        position: sql`excluded.position`,
        updated_at: sql`excluded.updated_at`,
      }),
    )
    .execute();
  return events;
}

/**
 * The swap of one tenant's rows: in one transaction, the tenant's live rows are deleted and the
 * copies inserted in their place, so readers see the old rows or the new ones, never neither.
 * Nothing else is touched: every other tenant's rows stay the very tuples they were. EXCLUSIVE,
 * not ACCESS EXCLUSIVE: this swap moves no table, so readers of every tenant go on reading
 * throughout. Writers of these tables wait: once the lock is held, every append that wrote to
 * them has committed (its events are replayed here), and every later one writes on top of the
 * swapped rows. Taken up front for the same reason as in `finish`.
 */
async function finishTenant(
  trx: Transaction<Database>,
  replay: Replay,
  tenantId: string,
  from: Checkpoint,
): Promise<number> {
  const { projection, schema } = replay;
  await lockTables(trx, projection, 'exclusive');
  const { events } = await replayRest(trx, replay, from);
  for (const table of projection.tables) {
    const column = sql.ref(tenantColumn(projection, table));
    // A projection that wrote another tenant's row from this tenant's events would put it into
    // the live table twice over: refuse, with nothing swapped.
    const foreign = await sql<{ n: number }>`
      select count(*)::int as n from ${sql.id(schema, table)} where ${column} is distinct from ${tenantId}`.execute(
      trx,
    );
    if (foreign.rows[0].n > 0) {
      throw new Error(`${projection.name} wrote ${foreign.rows[0].n} rows of other tenants into ${table}`);
    }
    const columns = sql.join((await columnsOf(trx, table)).map((c) => sql.id(c)));
    await sql`delete from public.${sql.table(table)} where ${column} = ${tenantId}`.execute(trx);
    await sql`insert into public.${sql.table(table)} (${columns})
      select ${columns} from ${sql.id(schema, table)}`.execute(trx);
  }
  return events;
}

/** The column of `table` that names a row's tenant. */
function tenantColumn(projection: InlineProjection, table: keyof Database): string {
  return projection.tenantColumns?.[table] ?? 'tenant_id';
}

async function lockTables(
  trx: Transaction<Database>,
  projection: InlineProjection,
  mode: 'access exclusive' | 'exclusive',
): Promise<void> {
  const tables = sql.join(projection.tables.map((t) => sql`public.${sql.table(t)}`));
  await sql`lock table ${tables} in ${sql.raw(mode)} mode`.execute(trx);
}

/** With writers held off, every event this projection must see is committed and visible. */
async function replayRest(
  trx: Transaction<Database>,
  replay: Replay,
  from: Checkpoint,
): Promise<{ events: number; after: Checkpoint }> {
  let after = from;
  let events = 0;
  for (;;) {
    const batch = await replayBatch(trx, replay, after, { committedOnly: false });
    events += batch.events;
    after = batch.after;
    if (batch.events < replay.batchSize) break;
  }
  return { events, after };
}

/** The live table's columns in their order (the copy has the same ones: `like … including all`). */
async function columnsOf(trx: Transaction<Database>, table: string): Promise<string[]> {
  const rows = await sql<{ name: string }>`
    select column_name as name from information_schema.columns
    where table_schema = 'public' and table_name = ${table}
    order by ordinal_position`.execute(trx);
  return rows.rows.map((r) => r.name);
}

/** Empty tables shaped like the live ones (columns, defaults, indexes, constraints). */
async function createCopies(
  conn: Kysely<Database>,
  projection: InlineProjection,
  schema: string,
): Promise<void> {
  await sql`create schema ${sql.id(schema)}`.execute(conn);
  for (const table of projection.tables) {
    await sql`create table ${sql.id(schema, table)} (like public.${sql.table(table)} including all)`.execute(
      conn,
    );
  }
}

/**
 * Applies the next events after `after` to the copies. `committedOnly` keeps to transactions
 * older than every one still running (as the feed does), so no event can later appear behind
 * the checkpoint; once writers are locked out that filter is not needed.
 */
async function replayBatch(
  trx: Transaction<Database>,
  replay: Replay,
  after: Checkpoint,
  options: { committedOnly: boolean },
): Promise<{ events: number; after: Checkpoint }> {
  const { projection, schema, tenantId, batchSize } = replay;
  // `set local`: only this transaction writes to the copies.
  await sql`set local search_path to ${sql.id(schema)}, public`.execute(trx);
  let query = trx
    .selectFrom('events')
    .selectAll()
    .where(
      sql<boolean>`(transaction_id, position) > (${after.transactionId}::xid8, ${after.position}::bigint)`,
    );
  if (tenantId !== null) query = query.where('tenant_id', '=', tenantId);
  if (options.committedOnly) {
    query = query.where(sql<boolean>`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`);
  }
  const rows = await query.orderBy('transaction_id').orderBy('position').limit(batchSize).execute();
  if (rows.length > 0) await projection.apply(trx, rows.map(toRecordedEvent));
  await sql`set local search_path to public`.execute(trx);
  const last = rows.at(-1);
  return {
    events: rows.length,
    after: last ? { transactionId: last.transaction_id, position: last.position } : after,
  };
}

/**
 * Moves the live tables out and the copies in, keeping the live tables' grants and index names.
 * `like … including all` names the copies' indexes after their columns, and code reads some
 * names (a unique violation on `service_accounts_name_unique` is a 409, not a 500), so each copy
 * index takes the name of the live index with the same definition.
 */
async function swap(
  trx: Transaction<Database>,
  projection: InlineProjection,
  beside: string,
  retired: string,
): Promise<void> {
  await sql`create schema ${sql.id(retired)}`.execute(trx);
  for (const table of projection.tables) {
    const grants = await sql<{ grantee: string; privilege_type: string }>`
      select grantee, privilege_type from information_schema.role_table_grants
      where table_schema = 'public' and table_name = ${table} and grantee <> current_user`.execute(trx);
    const liveIndexes = await indexesOf(trx, 'public', table);
    const copyIndexes = await indexesOf(trx, beside, table);
    await sql`alter table public.${sql.table(table)} set schema ${sql.id(retired)}`.execute(trx);
    await sql`alter table ${sql.id(beside, table)} set schema public`.execute(trx);
    for (const copy of copyIndexes) {
      const live = liveIndexes.find((index) => index.shape === copy.shape);
      if (live && live.name !== copy.name) {
        // Renaming an index that backs a constraint renames the constraint too.
        await sql`alter index public.${sql.id(copy.name)} rename to ${sql.id(live.name)}`.execute(trx);
      }
    }
    for (const grant of grants.rows) {
      const grantee = grant.grantee === 'PUBLIC' ? sql.raw('public') : sql.id(grant.grantee);
      await sql`grant ${sql.raw(privilege(grant.privilege_type))} on public.${sql.table(table)} to ${grantee}`.execute(
        trx,
      );
    }
  }
}

/** A table's indexes: name, and definition without its name or schema (what makes two alike). */
async function indexesOf(
  trx: Transaction<Database>,
  schema: string,
  table: string,
): Promise<{ name: string; shape: string }[]> {
  const rows = await sql<{ name: string; definition: string }>`
    select c.relname as name, pg_get_indexdef(i.indexrelid) as definition
    from pg_index i
    join pg_class c on c.oid = i.indexrelid
    join pg_class t on t.oid = i.indrelid
    join pg_namespace n on n.oid = t.relnamespace
    where n.nspname = ${schema} and t.relname = ${table}`.execute(trx);
  return rows.rows.map((row) => ({
    name: row.name,
    shape: row.definition.replace(/ INDEX \S+ ON \S+ /, ' INDEX ON '),
  }));
}

/** A privilege name from the catalogue, checked before it is spliced into GRANT. */
function privilege(name: string): string {
  const known = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];
  if (!known.includes(name)) throw new Error(`unexpected privilege ${name}`);
  return name;
}
