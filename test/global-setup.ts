import { Client } from 'pg';
// Relative, not @keyward/db: jest loads global setup outside its module mapper.
import { createDb, migrateToLatest } from '../libs/db/src';
import { migrations } from '../migrations';
import { ADMIN_DATABASE_URL, TEMPLATE_DATABASE, databaseUrl } from './support/env';

/**
 * Builds one migrated template database per run; every integration and e2e file then clones
 * it (test/support/database.ts), which takes a fraction of a second and isolates the files.
 */
export default async function globalSetup(): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    // Databases left by a run that was killed before its teardown.
    const stale = await admin.query<{ datname: string }>(
      `select datname from pg_database where datname like 'kwt\\_%' or datname = $1`,
      [TEMPLATE_DATABASE],
    );
    for (const { datname } of stale.rows) await admin.query(`drop database if exists "${datname}" with (force)`);
    await admin.query(`create database "${TEMPLATE_DATABASE}"`);
  } finally {
    await admin.end();
  }
  const db = createDb(databaseUrl(TEMPLATE_DATABASE), { max: 1, applicationName: 'keyward-test-setup' });
  try {
    await migrateToLatest(db, migrations);
  } finally {
    await db.destroy();
  }
}
