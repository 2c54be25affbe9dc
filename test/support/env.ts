/** Where the tests find PostgreSQL and Redis; the same defaults as the service's own. */
export const ADMIN_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Test databases are named `kwt_<pid of the jest run>_...`, so a run only ever drops its own and
 * those of runs that are no longer alive: two runs on one server never touch each other's.
 */
export const TEST_DATABASE_PREFIX = 'kwt_';

export function runDatabasePrefix(): string {
  const runPid = process.env.KEYWARD_TEST_RUN_PID;
  if (!runPid)
    throw new Error('KEYWARD_TEST_RUN_PID is unset: run the tests through jest (test/global-setup.ts)');
  return `${TEST_DATABASE_PREFIX}${runPid}_`;
}

export function templateDatabase(): string {
  return `${runDatabasePrefix()}template`;
}

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
