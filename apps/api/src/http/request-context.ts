import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { CommandContext, Caller } from '@keyward/auth';

export const CORRELATION_HEADER = 'x-correlation-id';
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What the HTTP layer attaches to a request: ids for logs and events, and the authenticated caller. */
export interface KeywardRequest extends IncomingMessage {
  id: string;
  correlationId: string;
  caller?: Caller;
  ip?: string;
}

/** A correlation id from the caller is kept if it is well-formed; otherwise one is made. Both ways it is echoed. */
export function assignCorrelationId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers[CORRELATION_HEADER];
  const id = typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
  (req as KeywardRequest).correlationId = id;
  res.setHeader('X-Correlation-Id', id);
  return id;
}

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

/** First middleware of every request: its request id (for logs) and correlation id (for logs and events). */
export function assignRequestIds(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  (req as KeywardRequest).id = randomUUID();
  assignCorrelationId(req, res);
  next();
}
