import 'reflect-metadata';
import { ConfigError, ensureBootstrapToken, loadConfig } from '@keyward/config';
import { Logger } from '@nestjs/common';
import { createApi } from './app';

async function main(): Promise<void> {
  const config = loadConfig();
  const made = ensureBootstrapToken(config);
  const app = await createApi({ config });
  app.enableShutdownHooks();
  await app.listen(config.port, config.host);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  new Logger('Keyward').log(
    `listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
  );
  if (made) {
    // Printed once to the terminal, like a dev server's root token; never through the logger.
    process.stdout.write(
      `\nNo KEYWARD_BOOTSTRAP_TOKEN was set, so this development server made one. It is shown only now:\n\n` +
        `    ${made}\n\nSet KEYWARD_BOOTSTRAP_TOKEN to keep one across restarts; production refuses to start without it.\n\n`,
    );
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    console.error('keyward api failed to start:', error instanceof Error ? error.message : error);
  }
  process.exit(1);
});
