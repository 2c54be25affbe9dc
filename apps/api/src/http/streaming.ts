import type { Response } from 'express';

/**
 * Resolves when the response can take more or has closed, and leaves no listener behind: a long
 * export waits here thousands of times. A response already closed resolves at once: its 'close'
 * event is gone, and waiting for it would hold the handler, and so the server's shutdown, forever.
 */
function drainedOrClosed(res: Response): Promise<void> {
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
export async function writeStreamed(res: Response, chunk: string): Promise<void> {
  if (res.write(chunk)) return;
  await drainedOrClosed(res);
  if (res.destroyed) throw new Error('the client closed the connection');
}
