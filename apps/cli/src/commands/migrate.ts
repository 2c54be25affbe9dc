import type { Command } from 'commander';
import { loadConfig } from '@keyward/config';
import { createDb, ensureDatabase, migrateToLatest } from '@keyward/db';
import { migrations } from '../../../../migrations';
import { outputFor } from '../output';

/** `migrate`: creates the database if it is missing and applies every pending migration. PostgreSQL only. */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('create the database if missing and apply pending migrations')
    .action(async (_options: unknown, command: Command) => {
      const out = outputFor(command);
      const config = loadConfig();
      // The name only: the URL may hold a password.
      const database = decodeURIComponent(new URL(config.databaseUrl).pathname.replace(/^\//, ''));
      const created = await ensureDatabase(config.databaseUrl);
      const db = createDb(config.databaseUrl, { max: 1, applicationName: 'keyward-cli' });
      let applied: string[];
      try {
        const results = await migrateToLatest(db, migrations);
        applied = results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
      } finally {
        await db.destroy();
      }
      out.result({ database, created, applied }, () => [
        ...(created ? [`created database ${database}`] : []),
        ...(applied.length
          ? applied.map((name) => `applied ${name}`)
          : [`database ${database} is up to date`]),
      ]);
    });
}
