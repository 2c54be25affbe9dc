import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CommandContext, Caller } from '@keyward/auth';

export const CORRELATION_HEADER = 'x-correlation-id';
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What the HTTP layer attaches to a request: ids for logs and events, and the authenticated caller. */
export interface KeywardRequest extends FastifyRequest {
  correlationId: string;
  caller?: Caller;
}

/** The ids as the raw request carries them, for the request log, which sees only the raw request. */
export type RawKeywardRequest = IncomingMessage & { id?: string; correlationId?: string };

export function commandContextOf(req: KeywardRequest): CommandContext {
  if (!req.caller) throw new Error('no caller on an authenticated route');
  return {
    caller: req.caller,
    correlationId: req.correlationId,
    requestId: req.id,
    sourceIp: req.ip ?? null,
  };
}

/** The command context of this request: `@Ctx() ctx: CommandContext`. */
export const Ctx = createParamDecorator((_data: unknown, context: ExecutionContext): CommandContext => {
  return commandContextOf(context.switchToHttp().getRequest<KeywardRequest>());
});

/**
 * Fastify's `genReqId`, called as it builds the request, before any hook or middleware (the
 * request log among them): the request id, and the correlation id, kept if the caller sent a
 * well-formed one, else made. Both go on the raw request, which is all the request log sees.
 */
export function assignRequestIds(raw: IncomingMessage): string {
  const given = raw.headers[CORRELATION_HEADER];
  const ids = raw as RawKeywardRequest;
  ids.correlationId = typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
  return (ids.id = randomUUID());
}

/**
 * The correlation id is echoed on the raw response, so streamed answers (which bypass Fastify's
 * reply) carry it too.
 */
export function registerRequestContext(fastify: FastifyInstance): void {
  fastify.decorateRequest('correlationId', '');
  fastify.decorateRequest('caller', undefined);
  fastify.addHook('onRequest', (request, reply, done) => {
    const id = (request.raw as RawKeywardRequest).correlationId ?? randomUUID();
    (request as KeywardRequest).correlationId = id;
    reply.raw.setHeader('X-Correlation-Id', id);
    done();
  });
}
