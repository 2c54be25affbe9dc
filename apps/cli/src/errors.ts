import { CommanderError } from 'commander';
import { ConfigError } from '@keyward/config';
import { DomainError, ValidationFailed, isUnavailableError, type FieldError } from '@keyward/core';

/** Exit codes: 0 done, 1 the command failed, 2 the command line was wrong. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

interface Described {
  code: string;
  message: string;
  /** A ValidationFailed's field errors. */
  errors?: FieldError[];
  /** Only for errors nobody expected (a bug): their stack helps whoever reports it. */
  stack?: string;
}

/**
 * Prints a failed command's error to stderr and answers the exit code. Expected errors (a domain
 * error, bad configuration, a database that cannot be reached) print their message alone.
 */
export function reportError(error: unknown, json: boolean): number {
  if (error instanceof CommanderError) {
    // Commander has printed its own message (usage errors, help, --version) already.
    return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  const described = describe(error);
  if (json) {
    const { stack: _stack, ...rest } = described;
    process.stderr.write(`${JSON.stringify({ error: rest })}\n`);
  } else {
    const lines = [
      `error: ${described.message}`,
      ...(described.errors ?? []).map((e) => `  ${e.field}: ${e.message}`),
    ];
    if (described.stack) lines.push(described.stack);
    process.stderr.write(`${lines.join('\n')}\n`);
  }
  return EXIT_FAILED;
}

function describe(error: unknown): Described {
  if (error instanceof ValidationFailed) {
    return { code: error.code, message: error.message, errors: error.errors };
  }
  if (error instanceof DomainError) return { code: error.code, message: error.message };
  if (error instanceof ConfigError) return { code: 'CONFIG_INVALID', message: error.message };
  if (isUnavailableError(error)) {
    return { code: 'UNAVAILABLE', message: `cannot reach a dependency: ${messageOf(error)}` };
  }
  if (isPostgresError(error)) return { code: 'DATABASE_ERROR', message: messageOf(error) };
  return {
    code: 'INTERNAL',
    message: messageOf(error),
    stack: error instanceof Error ? error.stack : undefined,
  };
}

/** An error PostgreSQL answered with (a missing table before `migrate`, a refused grant): not a bug here. */
function isPostgresError(error: unknown): boolean {
  const e = error as { code?: unknown; severity?: unknown };
  return typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return messageOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
