import { Client } from 'pg';
// Relative, not @keyward/db: jest loads global setup outside its module mapper.
import { createDb, migrateToLatest } from '../libs/db/src';
import { migrations } from '../migrations';
import { ADMIN_DATABASE_URL, TEST_DATABASE_PREFIX, databaseUrl, templateDatabase } from './support/env';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Builds one migrated template database for this run; every integration and e2e file then
 * clones it (test/support/database.ts), which takes a fraction of a second and isolates the files.
 * The run's pid goes into the names (workers inherit it through the environment).
 */
export default async function globalSetup(): Promise<void> {
  process.env.KEYWARD_TEST_RUN_PID = String(process.pid);
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    // Leftovers of runs that were killed before their teardown: only those whose run is gone.
    const existing = await admin.query<{ datname: string }>(
      `select datname from pg_database where datname like $1`,
      [`${TEST_DATABASE_PREFIX.replace('_', '\\_')}%`],
    );
    for (const { datname } of existing.rows) {
      const pid = Number(/^kwt_(\d+)_/.exec(datname)?.[1]);
      if (!pid || (pid !== process.pid && alive(pid))) continue;
      await admin.query(`drop database if exists "${datname}" with (force)`);
    }
    await admin.query(`create database "${templateDatabase()}"`);
  } finally {
    await admin.end();
  }
  const db = createDb(databaseUrl(templateDatabase()), { max: 1, applicationName: 'keyward-test-setup' });
  try {
    await migrateToLatest(db, migrations);
  } finally {
    await db.destroy();
  }
}
