import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import {
  Conflict,
  DomainError,
  PolicyViolation,
  RateLimited,
  ValidationFailed,
  isUnavailableError,
} from '@keyward/core';
import { HttpProblem, problem, sendProblem, type Problem } from './problem';
import { schemaFieldErrors, type SchemaError } from './validation';

const STATUS: Record<string, number> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  POLICY_VIOLATION: 422,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
};

const HTTP_CODES: Record<number, string> = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'POLICY_VIOLATION',
  429: 'RATE_LIMITED',
  503: 'UNAVAILABLE',
};

/**
 * Fastify's own refusals before a route runs (body too large, no parser for the content type, a
 * body shorter than its Content-Length): their 4xx status with our codes and words.
 */
function fromFastifyError(error: unknown): Problem | undefined {
  const e = error as {
    code?: unknown;
    statusCode?: unknown;
    validation?: SchemaError[];
  };
  if (typeof e?.code !== 'string' || !e.code.startsWith('FST_') || typeof e.statusCode !== 'number') return;
  if (e.validation) {
    return problem(400, 'VALIDATION_FAILED', 'the request is not valid', {
      errors: schemaFieldErrors(e.validation),
    });
  }
  if (e.statusCode === 413) {
    return problem(413, 'PAYLOAD_TOO_LARGE', 'the body is over 64 KiB');
  }
  if (e.statusCode === 415) {
    return problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json');
  }
  if (e.statusCode >= 400 && e.statusCode < 500) {
    return problem(400, 'VALIDATION_FAILED', 'the body was cut short or does not match its Content-Length');
  }
  return undefined;
}

/** Turns any error into problem JSON. Unknown errors are logged and answer a bare 500: no stack, no message. */
export function toProblem(error: unknown): Problem {
  if (error instanceof DomainError) {
    const extra: Partial<Problem> = {};
    if (error instanceof ValidationFailed && error.errors.length) extra.errors = error.errors;
    if (error instanceof Conflict && error.versions) Object.assign(extra, error.versions);
    if (error instanceof PolicyViolation) extra.errors = [{ field: error.rule, message: error.message }];
    return problem(STATUS[error.code] ?? 500, error.code, error.message, extra);
  }
  if (error instanceof HttpProblem) return error.problem;
  const fastifyProblem = fromFastifyError(error);
  if (fastifyProblem) return fastifyProblem;
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const code = HTTP_CODES[status] ?? (status >= 500 ? 'INTERNAL' : 'VALIDATION_FAILED');
    const body = error.getResponse();
    const detail = typeof body === 'string' ? body : status === 404 ? 'no such route' : error.message;
    return problem(status, code, detail);
  }
  if (isUnavailableError(error)) {
    return problem(503, 'UNAVAILABLE', 'a dependency of Keyward is unavailable; nothing was changed');
  }
  return problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged');
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  catch(error: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<FastifyReply>();
    const body = toProblem(error);
    if (body.status >= 500) {
      // The stack goes to the log, never to the caller.
      const request = host.switchToHttp().getRequest<{ id?: string; method?: string; url?: string }>();
      this.logger.error(
        { err: error, status: body.status, reqId: request?.id, method: request?.method, url: request?.url },
        'request failed',
      );
    }
    if (res.sent || res.raw.headersSent) return;
    if (body.status === 503) void res.header('Retry-After', '5');
    if (error instanceof RateLimited) void res.header('Retry-After', String(error.retryAfterSeconds));
    sendProblem(res, body);
  }
}
