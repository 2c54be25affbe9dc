import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the receiver got: what webhooks and secret deliveries are tested by. */
export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  /** `http://127.0.0.1:<port>`: deliveries there need KEYWARD_WEBHOOK_ALLOW_PRIVATE. */
  base: string;
  received: ReceivedRequest[];
  /** Status codes each path answers, in turn; the last one repeats. 200 when unset. */
  answers: Map<string, number[]>;
  close(): Promise<void>;
}

/**
 * A real HTTP receiver on 127.0.0.1 for webhook and secret deliveries. `beforeAnswer` runs once
 * the request is recorded and before it is answered: what happens elsewhere while a delivery is
 * in flight.
 */
export async function startReceiver(
  beforeAnswer?: (request: ReceivedRequest) => Promise<void>,
): Promise<Receiver> {
  const received: ReceivedRequest[] = [];
  const answers = new Map<string, number[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = {
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(request);
      void (beforeAnswer?.(request) ?? Promise.resolve()).finally(() => {
        const queue = answers.get(request.path) ?? [200];
        const status = queue.length > 1 ? queue.shift()! : queue[0]!;
        res.writeHead(status).end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    answers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
