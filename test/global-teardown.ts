import { Client } from 'pg';
import { ADMIN_DATABASE_URL, runDatabasePrefix } from './support/env';

/** Drops this run's template and any database a file failed to drop. */
export default async function globalTeardown(): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    const own = await admin.query<{ datname: string }>(
      `select datname from pg_database where starts_with(datname, $1)`,
      [runDatabasePrefix()],
    );
    for (const { datname } of own.rows)
      await admin.query(`drop database if exists "${datname}" with (force)`);
  } finally {
    await admin.end();
  }
}
