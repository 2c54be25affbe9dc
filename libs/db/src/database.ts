import { Kysely, PostgresDialect } from 'kysely';
import { Pool, type PoolConfig } from 'pg';
import Cursor from 'pg-cursor';
import type { Database } from './schema';

export type Db = Kysely<Database>;

export interface DbOptions {
  max?: number;
  /** Written as application_name, so pg_stat_activity tells api, worker and cli apart. */
  applicationName?: string;
}

export function poolConfig(databaseUrl: string, options: DbOptions = {}): PoolConfig {
  return {
    connectionString: databaseUrl,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'keyward',
    connectionTimeoutMillis: 5_000,
    // A session left idle inside a transaction would hold back pg_snapshot_xmin and so stall
    // every reader of the global feed; PostgreSQL ends such sessions after this long.
    options: '-c idle_in_transaction_session_timeout=15000 -c statement_timeout=30000',
  };
}

/** Whether each Db's pool last heard its server well: see `storeReachable`. */
const reachability = new WeakMap<Db, () => boolean>();

export function createDb(databaseUrl: string, options: DbOptions = {}): Db {
  const pool = new Pool(poolConfig(databaseUrl, options));
  let lost = false;
  // An idle client's error (the server restarted) must not crash the process; the pool drops it.
  pool.on('error', () => (lost = true));
  // pg-pool removes its own listener while a client is checked out, and Kysely adds none: a
  // session ended mid-query (failover, pg_terminate_backend, the idle timeout) would then emit an
  // unhandled 'error' and kill the process. The query in flight still rejects (503), and the
  // pool discards the broken client.
  pool.on('connect', (client) => {
    lost = false;
    client.on('error', () => (lost = true));
  });
  // The cursor lets queries stream (reports, exports) in flat memory instead of loading every row.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) });
  reachability.set(db, () => !lost && !pool.ending);
  return db;
}

/**
 * False from the moment a connection of this Db broke (or its pool is closing) until a new one
 * is made: no I/O, so the verify path can ask it on every request. In-process caches of what the
 * store holds are not trusted meanwhile, so a store that went away is answered 503 (fail closed)
 * rather than from memory. Only a broken connection tells: a pool with no connection open learns
 * of an outage at its next query.
 */
export function storeReachable(db: Db): boolean {
  return reachability.get(db)?.() ?? true;
}

/** Injection token for the Kysely instance in Nest modules. */
export const DB = Symbol('DB');
