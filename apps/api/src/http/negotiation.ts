import accepts from 'accepts';
import type { FastifyRequest } from 'fastify';

/** The first of `types` the request's Accept header prefers, or false when it accepts none. */
export function preferred(request: FastifyRequest, types: string[]): string | false {
  return accepts(request.raw).type(types) as string | false;
}
