import type { IncomingHttpHeaders } from 'node:http';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { expectedVersionFrom } from './versioning';

/** Documents the header in OpenAPI on the route that takes it, as `@Headers()` did. */
const documented: ParameterDecorator = (target, key) => {
  if (key === undefined) return;
  const descriptor = Object.getOwnPropertyDescriptor(target, key)!;
  ApiHeader({
    name: 'If-Match',
    required: false,
    description: 'the version the change is based on: "3", W/"3" or 3; * or none for no check',
  })(target, key, descriptor);
};

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
  [documented],
);
