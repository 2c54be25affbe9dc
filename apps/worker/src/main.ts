import pino from 'pino';
import { ConfigError, loadConfig } from '@keyward/config';
import { startWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ level: config.logLevel, base: { app: 'keyward-worker' } });
  const worker = await startWorker(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining: running jobs finish, no new ones start');
    worker.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while draining');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(
    error instanceof ConfigError ? error.message : `keyward worker failed to start: ${String(error)}`,
  );
  process.exit(1);
});
