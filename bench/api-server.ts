import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { loadConfig } from '@keyward/config';
import { createApi } from '../apps/api/src/app';

/**
 * The API as the benchmarks load it: its own process (so the load generator does not share its
 * event loop), the app of apps/api/src/app.ts, configured from the environment the parent passes.
 * Tells the parent its port over IPC; closes (pools, Redis) when asked or when the parent goes away.
 */
export type ApiServerMessage =
  { type: 'listening'; port: number } | { type: 'closed' } | { type: 'failed'; error: string };

function send(message: ApiServerMessage): void {
  // After the parent went away the channel is closed, and sending would raise an unhandled error.
  if (process.connected) process.send?.(message);
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await createApi({ config });
  await app.listen(0, '127.0.0.1');
  const port = ((app.getHttpServer() as Server).address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= app.close().then(
      () => send({ type: 'closed' }),
      (error: unknown) => send({ type: 'failed', error: String(error) }),
    );
    return closing;
  };
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'close') void close().then(() => process.exit(0));
  });
  process.on('disconnect', () => void close().then(() => process.exit(0)));
  send({ type: 'listening', port });
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
});
