import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { ApiServerMessage } from './api-server';

/**
 * The framework ceiling the verify bench is measured against: a bare Fastify server in its own
 * process answering a small JSON POST the way verify is shaped (parse a body with a key, answer a
 * few fields), with nothing of Keyward in it. Same IPC protocol as api-server.ts.
 */
function send(message: ApiServerMessage): void {
  if (process.connected) process.send?.(message);
}

async function main(): Promise<void> {
  const app = Fastify({ logger: false });
  app.post('/verify', async (request) => {
    const { key } = request.body as { key: string };
    return { valid: true, keyId: key.slice(0, 16), scopes: ['tickets:read'], rateLimit: null };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  const close = () => app.close().then(() => send({ type: 'closed' }));
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
