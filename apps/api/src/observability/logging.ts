import type { IncomingMessage } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { RawKeywardRequest } from '../http/request-context';

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

/** The path as requested: middleware mounted on a path (middie) sees `url` without it. */
function requestedUrl(req: IncomingMessage): string {
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
}

/** POST /v1/verify and the gateway check, with or without an appended path or a query. */
function isHotPath(req: IncomingMessage): boolean {
  const url = requestedUrl(req);
  return url === '/v1/verify' || url.startsWith('/v1/gateway/check');
}

export function loggerParams(level: string, stream?: NodeJS.WritableStream): Params {
  const pinoHttp = {
    level,
    redact: { paths: REDACTED_PATHS, remove: true },
    genReqId: (req: IncomingMessage) => (req as RawKeywardRequest).id,
    customProps: (req: IncomingMessage) => ({ correlationId: (req as RawKeywardRequest).correlationId }),
    // A 5xx is ours to look at; a 4xx is the caller's, logged but not as an error. The hot path
    // logs only its 5xx: a refused key is a verify result (counted on /metrics), not an error,
    // and a line per verification would cost more than the verification.
    customLogLevel: (req: IncomingMessage, res: { statusCode: number }, error?: Error) => {
      if (error || res.statusCode >= 500) return 'error';
      if (isHotPath(req)) return 'silent';
      return res.statusCode >= 400 ? 'warn' : 'info';
    },
    // Health probes and scrapes every few seconds would drown the request log.
    autoLogging: {
      ignore: (req: IncomingMessage) => ['/health/live', '/metrics'].includes(requestedUrl(req)),
    },
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
