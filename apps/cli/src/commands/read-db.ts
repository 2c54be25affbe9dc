import { InvalidArgumentError, Option } from 'commander';
import { loadConfig } from '@keyward/config';
import { NotFound } from '@keyward/core';
import { createDb, type Db } from '@keyward/db';
import { isInstant } from '@keyward/replay';

/*
 * What the incident-response commands (history, state, access, export, integrity, identify) share.
 * They read PostgreSQL directly, without the Nest context or Redis: a responder must be able to
 * look at history while the API, the worker or Redis is the thing that is down.
 */

/** Runs `work` with a one-connection pool and closes it, so the process can exit on its own. */
export async function withReadDb<T>(work: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb(loadConfig().databaseUrl, { max: 1, applicationName: 'keyward-cli' });
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}

export function tenantOption(): Option {
  return new Option('--tenant <id>', 'tenant id').makeOptionMandatory();
}

/**
 * A tenant that does not exist is named as such: otherwise a mistyped tenant would answer an
 * empty export or an intact, empty hash chain, and a responder could believe either.
 */
export async function requireTenant(db: Db, tenantId: string): Promise<void> {
  const row = await db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
  if (!row) throw new NotFound(`no tenant ${tenantId}`);
}

/** The API's `asOf` rule (isInstant): a date, or a date and time with its zone; never a guess. */
export function parseInstant(value: string): Date {
  if (!isInstant(value)) {
    throw new InvalidArgumentError(
      'expected an ISO-8601 time with its zone, such as 2026-03-01T09:00:00Z, or a date such as 2026-03-01',
    );
  }
  return new Date(Date.parse(value));
}

export function iso(date: Date | null): string | null {
  return date?.toISOString() ?? null;
}

/** A cell of a table: '-' for nothing, lists joined. */
export function cell(value: string | readonly string[] | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value === '' ? '-' : value;
  return value.length === 0 ? '-' : value.join(',');
}
