import type { FastifyReply } from 'fastify';
import { ValidationFailed } from '@keyward/core';

/**
 * `If-Match: "<version>"` (weak or bare forms accepted, `*` matches any): the version the caller
 * based its change on. Undefined when absent.
 */
export function expectedVersionFrom(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  // Quotes must be balanced: `"3"`, `W/"3"` or a bare `3`, never `"3` or `3"`.
  const match = /^\s*(?:(?:W\/)?"(\d{1,9})"|(\d{1,9}))\s*$/.exec(header);
  if (!match) {
    throw new ValidationFailed('If-Match is not a version', [
      { field: 'If-Match', message: 'must be a version such as "3"' },
    ]);
  }
  return Number(match[1] ?? match[2]);
}

export function setVersion(reply: FastifyReply, version: number): void {
  void reply.header('ETag', `"${version}"`);
}
