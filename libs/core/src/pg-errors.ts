/** PostgreSQL error codes the application reacts to. */
export const PG_UNIQUE_VIOLATION = '23505';

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string };
  return e?.code === PG_UNIQUE_VIOLATION && (constraint === undefined || e.constraint === constraint);
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * True when an error means a dependency (PostgreSQL or Redis) could not be reached or went away,
 * as opposed to a bug: such errors answer 503 UNAVAILABLE.
 */
export function isUnavailableError(error: unknown): boolean {
  const e = error as { code?: string; message?: string; name?: string };
  if (!e) return false;
  if (e.code && UNAVAILABLE_CODES.has(e.code)) return true;
  // SQLSTATE class 08 (connection exception), 57P01..57P03 (shutdown, cannot connect now), 53300 (too many connections).
  if (e.code && (/^08/.test(e.code) || /^57P0[123]$/.test(e.code) || e.code === '53300')) return true;
  const message = e.message ?? '';
  return (
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      message,
    ) ||
    /Connection is closed|Stream isn't writeable|Reached the max retries per request limit/i.test(message) ||
    // ioredis's commandTimeout and socketTimeout: a Redis that took the connection but never answered.
    /^Command timed out$|^Socket timeout\. Expecting data/i.test(message) ||
    /driver has already been destroyed|Cannot use a pool after calling end/i.test(message) ||
    e.name === 'MaxRetriesPerRequestError'
  );
}
