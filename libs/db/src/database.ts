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

export function createDb(databaseUrl: string, options: DbOptions = {}): Db {
  const pool = new Pool(poolConfig(databaseUrl, options));
  // An idle client's error (the server restarted) must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  // pg-pool removes its own listener while a client is checked out, and Kysely adds none: a
  // session ended mid-query (failover, pg_terminate_backend, the idle timeout) would then emit an
  // unhandled 'error' and kill the process. The query in flight still rejects (503), and the
  // pool discards the broken client.
  pool.on('connect', (client) => client.on('error', () => undefined));
  // The cursor lets queries stream (reports, exports) in flat memory instead of loading every row.
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) });
}

/** Injection token for the Kysely instance in Nest modules. */
export const DB = Symbol('DB');
