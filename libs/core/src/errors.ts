/**
 * Domain errors: thrown by aggregates and handlers, free of HTTP. The API maps each to its
 * status and problem code (apps/api/src/http/problem.filter.ts); the CLI prints the message.
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface FieldError {
  field: string;
  message: string;
}

export class ValidationFailed extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  constructor(
    message: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
  }
}

export class NotFound extends DomainError {
  readonly code = 'NOT_FOUND';
}

export class Forbidden extends DomainError {
  readonly code = 'FORBIDDEN';
}

export class Unauthenticated extends DomainError {
  readonly code = 'UNAUTHENTICATED';
}

/** A duplicate, a stale version, or a change the current state does not allow. */
export class Conflict extends DomainError {
  readonly code = 'CONFLICT';
  constructor(
    message: string,
    readonly versions?: { expectedVersion: number; actualVersion: number },
  ) {
    super(message);
  }
}

export class PolicyViolation extends DomainError {
  readonly code = 'POLICY_VIOLATION';
  constructor(
    message: string,
    readonly rule: string,
  ) {
    super(message);
  }
}

/** Too many attempts for now: try again in `retryAfterSeconds` (the answer's Retry-After). */
export class RateLimited extends DomainError {
  readonly code = 'RATE_LIMITED';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A dependency (PostgreSQL, Redis) could not be reached; nothing was changed. */
export class Unavailable extends DomainError {
  readonly code = 'UNAVAILABLE';
}
