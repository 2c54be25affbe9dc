import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Params } from 'nestjs-pino';
import { pinoHttp, type HttpLogger, type Options } from 'pino-http';
import type { KeywardRequest, RawKeywardRequest } from '../http/request-context';

/**
 * Structured JSON logs: one line per request with its request id and correlation id. Headers that
 * carry credentials are removed, not masked, so no part of a token can reach a log line.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-keyward-verifier"]',
  'res.headers["set-cookie"]',
];

/** Routes whose answers are results, not events: their request lines would cost more than they do. */
const HOT_ROUTES = new Set(['/v1/verify', '/v1/gateway/check', '/v1/gateway/check/*']);
/** Health probes and scrapes every few seconds would drown the request log. */
const PROBES = new Set(['/health/live', '/metrics']);

function requestLine(request: FastifyRequest, statusCode: number) {
  return {
    req: { id: request.id, method: request.method, url: request.url, remoteAddress: request.ip },
    correlationId: (request as KeywardRequest).correlationId,
    res: { statusCode },
  };
}

/**
 * The request log (pino-http): one line per request with its request id and correlation id, 5xx
 * at error, 4xx at warn. Run from a Fastify hook on the raw request, not as Nest middleware, so a
 * request costs no middleware pass and no async context; the hot routes are not logged at all
 * below error (a refused key is a verify result, counted on /metrics), and their 5xx are logged
 * here in the same shape.
 */
export function createRequestLogger(level: string, stream?: NodeJS.WritableStream): HttpLogger {
  const options: Options = {
    level,
    redact: { paths: REDACTED_PATHS, remove: true },
    genReqId: (req: IncomingMessage) => (req as RawKeywardRequest).id ?? '',
    customProps: (req: IncomingMessage) => ({ correlationId: (req as RawKeywardRequest).correlationId }),
    customLogLevel: (_req: IncomingMessage, res: { statusCode: number }, error?: Error) =>
      error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    serializers: {
      req: (req: { id: string; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        remoteAddress: req.remoteAddress,
      }),
    },
  };
  return stream ? pinoHttp(options, stream) : pinoHttp(options);
}

export function registerRequestLog(fastify: FastifyInstance, requestLogger: HttpLogger): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const route = request.routeOptions.url;
    if (route === undefined || (!HOT_ROUTES.has(route) && !PROBES.has(route))) {
      requestLogger(request.raw, reply.raw);
    }
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url;
    if (route !== undefined && HOT_ROUTES.has(route) && reply.statusCode >= 500) {
      requestLogger.logger.error(requestLine(request, reply.statusCode), 'request errored');
    }
    done();
  });
}

/**
 * nestjs-pino for the application's own log lines, on the request log's pino instance; its
 * request middleware is applied to no route (registerRequestLog logs requests).
 */
export function loggerParams(requestLogger: HttpLogger): Params {
  return { pinoHttp: { logger: requestLogger.logger }, forRoutes: [] };
}
