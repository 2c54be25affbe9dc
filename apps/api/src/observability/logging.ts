import type { IncomingMessage } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { KeywardRequest } from '../http/request-context';

/**
 * Structured JSON logs: one line per request with its request id and correlation id. Headers that
 * carry credentials are removed, not masked, so no part of a token can reach a log line.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

export function loggerParams(level: string, stream?: NodeJS.WritableStream): Params {
  const pinoHttp = {
    level,
    redact: { paths: REDACTED_PATHS, remove: true },
    genReqId: (req: IncomingMessage) => (req as KeywardRequest).id,
    customProps: (req: IncomingMessage) => ({ correlationId: (req as KeywardRequest).correlationId }),
    // A 5xx is ours to look at; a 4xx is the caller's, logged but not as an error.
    customLogLevel: (_req: IncomingMessage, res: { statusCode: number }, error?: Error) =>
      error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    // Health probes and scrapes every few seconds would drown the request log.
    autoLogging: { ignore: (req: IncomingMessage) => req.url === '/health/live' || req.url === '/metrics' },
    serializers: {
      req: (req: { id: string; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        remoteAddress: req.remoteAddress,
      }),
    },
  };
  return { pinoHttp: stream ? [pinoHttp, stream] : pinoHttp };
}
