import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createDb, type Db } from '@keyward/db';
import { ADMIN_DATABASE_URL, databaseUrl, runDatabasePrefix, templateDatabase } from './env';

export interface TestDatabase {
  name: string;
  url: string;
  db: Db;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

async function adminQuery(text: string): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}

/** A fresh, migrated database of this test file's own. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${runDatabasePrefix()}${randomBytes(6).toString('hex')}`;
  // Two files cloning the template at the same moment can collide on its lock; try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await adminQuery(`create database "${name}" template "${templateDatabase()}"`);
      break;
    } catch (error) {
      if (attempt >= 10 || (error as { code?: string }).code !== '55006') throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
  const url = databaseUrl(name);
  const db = createDb(url, { max: 10, applicationName: 'keyward-test' });
  return {
    name,
    url,
    db,
    drop: async () => {
      await db.destroy();
      await adminQuery(`drop database if exists "${name}" with (force)`);
    },
  };
}

/** A Redis prefix of this test file's own, so files never see each other's keys or channels. */
export function testRedisPrefix(): string {
  return `kwt-${randomBytes(6).toString('hex')}`;
}
