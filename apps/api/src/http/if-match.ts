import type { IncomingHttpHeaders } from 'node:http';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { expectedVersionFrom } from './versioning';

/**
 * `@IfMatch() expectedVersion: number | undefined`: the version an `If-Match` header names
 * (undefined when absent or `*`). The one way a route takes If-Match, so every route that does
 * answers a malformed one with 400 VALIDATION_FAILED before anything runs. Headers are read from
 * the request Nest hands over, whichever HTTP adapter serves it.
 */
export const IfMatch = createParamDecorator(
  (_data: unknown, context: ExecutionContext): number | undefined => {
    const { headers } = context.switchToHttp().getRequest<{ headers: IncomingHttpHeaders }>();
    return expectedVersionFrom(headers['if-match']);
  },
);
