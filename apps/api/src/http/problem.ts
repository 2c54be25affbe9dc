import type { FastifyReply } from 'fastify';
import type { FieldError } from '@keyward/core';

/** RFC 9457 problem details, the body of every error (API.md "Errors"). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  errors?: FieldError[];
  expectedVersion?: number;
  actualVersion?: number;
}

const TITLES: Record<string, string> = {
  VALIDATION_FAILED: 'Validation failed',
  UNAUTHENTICATED: 'Unauthenticated',
  FORBIDDEN: 'Forbidden',
  NOT_FOUND: 'Not found',
  CONFLICT: 'Conflict',
  PAYLOAD_TOO_LARGE: 'Payload too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  POLICY_VIOLATION: 'Policy violation',
  RATE_LIMITED: 'Rate limited',
  UNAVAILABLE: 'Service unavailable',
  INTERNAL: 'Internal error',
  METHOD_NOT_ALLOWED: 'Method not allowed',
};

export function problem(status: number, code: string, detail: string, extra: Partial<Problem> = {}): Problem {
  return {
    type: `https://keyward.dev/problems/${code.toLowerCase().replace(/_/g, '-')}`,
    title: TITLES[code] ?? code,
    status,
    code,
    detail,
    ...extra,
  };
}

/** An answer decided below the routes (body parsing): carried to the problem filter as it is. */
export class HttpProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

export function sendProblem(reply: FastifyReply, body: Problem): void {
  void reply.status(body.status).type('application/problem+json').send(JSON.stringify(body));
}
