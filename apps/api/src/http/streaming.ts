import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/**
 * Resolves when the response can take more or has closed, and leaves no listener behind: a long
 * export waits here thousands of times. A response already closed resolves at once: its 'close'
 * event is gone, and waiting for it would hold the handler, and so the server's shutdown, forever.
 */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed || res.closed) {
      resolve();
      return;
    }
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Writes a chunk of a streamed answer, waiting while the client is slow to take it (so memory
 * stays flat); throws when the client went away, which ends the stream there.
 */
export async function writeStreamed(res: ServerResponse, chunk: string): Promise<void> {
  if (res.write(chunk)) return;
  await drainedOrClosed(res);
  if (res.destroyed) throw new Error('the client closed the connection');
}

/**
 * Takes the answer over from Fastify for a streamed body: status and headers go on the raw
 * response, which the caller then writes with writeStreamed and ends.
 */
export function startStream(reply: FastifyReply, headers: Record<string, string>): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.statusCode = 200;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  return res;
}
