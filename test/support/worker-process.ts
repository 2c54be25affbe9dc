import pino from 'pino';
import { loadConfig } from '@keyward/config';
import { ManualClock } from '@keyward/core';
import { startWorker } from '../../apps/worker/src/worker';

/**
 * A worker in a process of its own, for tests that must kill one for real (SIGKILL): what
 * apps/worker/src/main.ts runs, with the test's time instead of the system clock
 * (KEYWARD_TEST_NOW, an ISO instant; the clock stands still). Prints `ready` once every queue's
 * worker is started. SIGTERM drains as main.ts does.
 *
 *   node -r ts-node/register/transpile-only -r tsconfig-paths/register test/support/worker-process.ts
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const now = process.env.KEYWARD_TEST_NOW;
  if (!now) throw new Error('KEYWARD_TEST_NOW is unset');
  const logger = pino({ level: config.logLevel, base: { app: 'keyward-worker-test' } });
  const worker = await startWorker(config, logger, { clock: new ManualClock(now) });
  process.on('SIGTERM', () => {
    worker.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  process.stdout.write('ready\n');
}

main().catch((error: unknown) => {
  console.error(`test worker failed to start: ${String(error)}`);
  process.exit(1);
});
