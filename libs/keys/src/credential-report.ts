import { sql } from 'kysely';
import type { Db } from '@keyward/db';
import { keyIsLive } from './key.reader';
import { keyStatusAt, type KeyStatus } from './key';
import { rotationDueAt } from './rotation-policy';

/** One live key with its account: a row of the credential report (API.md "Reports"). */
export interface CredentialReportRow {
  serviceAccountId: string;
  serviceAccount: string;
  environment: string;
  businessOwner: string;
  technicalOwner: string;
  keyId: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string;
  /** When the account's rotation policy wants the key replaced; null without a policy. */
  rotationDueAt: string | null;
  status: KeyStatus;
}

/** Rows per query of the report. */
const BATCH = 500;

/**
 * Every live key of the tenant, read in keyset batches (by account name, creation, id), so ten
 * thousand keys never sit in memory at once. Batches rather than a database cursor: a cursor
 * would hold a pooled connection for as long as a slow client takes to download, and pg-cursor
 * never settles its close after a lost connection.
 */
export async function* credentialReport(
  db: Db,
  tenantId: string,
  now: Date,
): AsyncGenerator<CredentialReportRow> {
  let after: { name: string; createdAt: Date; id: string } | null = null;
  for (;;) {
    const rows = await reportBatch(db, tenantId, now, after);
    for (const row of rows) yield reportRow(row, now);
    const last = rows.at(-1);
    if (!last || rows.length < BATCH) return;
    after = { name: last.account_name, createdAt: last.created_at, id: last.id };
  }
}

function reportBatch(
  db: Db,
  tenantId: string,
  now: Date,
  after: { name: string; createdAt: Date; id: string } | null,
) {
  return db
    .selectFrom('keys')
    .innerJoin('service_accounts as a', 'a.id', 'keys.service_account_id')
    .leftJoin('key_usage as u', 'u.key_id', 'keys.id')
    .select([
      'keys.id',
      'keys.prefix',
      'keys.scopes',
      'keys.created_at',
      'u.last_used_at',
      'keys.expires_at',
      'keys.grace_ends_at',
      'keys.revoked_at',
      'keys.expired_at',
      'a.id as account_id',
      'a.name as account_name',
      'a.environment',
      'a.business_owner',
      'a.technical_owner',
      'a.rotation_policy',
    ])
    .where('keys.tenant_id', '=', tenantId)
    .where('a.status', '<>', 'deleted')
    .where((eb) => keyIsLive(eb, now))
    .$if(after !== null, (q) =>
      q.where(
        sql<boolean>`(a.name, keys.created_at, keys.id) > (${after!.name}, ${after!.createdAt}, ${after!.id})`,
      ),
    )
    .orderBy('a.name')
    .orderBy('keys.created_at')
    .orderBy('keys.id')
    .limit(BATCH)
    .execute();
}

type ReportBatchRow = Awaited<ReturnType<typeof reportBatch>>[number];

function reportRow(row: ReportBatchRow, now: Date): CredentialReportRow {
  const policy = row.rotation_policy;
  const expiresAt = row.expires_at.toISOString();
  const graceEndsAt = row.grace_ends_at?.toISOString() ?? null;
  return {
    serviceAccountId: row.account_id,
    serviceAccount: row.account_name,
    environment: row.environment,
    businessOwner: row.business_owner,
    technicalOwner: row.technical_owner,
    keyId: row.id,
    prefix: row.prefix,
    scopes: row.scopes,
    createdAt: row.created_at.toISOString(),
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    expiresAt,
    rotationDueAt: policy ? rotationDueAt(row.created_at, policy).toISOString() : null,
    status: keyStatusAt(
      { revokedAt: row.revoked_at, expiredAt: row.expired_at, expiresAt, graceEndsAt },
      now,
    ),
  };
}

export const CREDENTIAL_REPORT_COLUMNS: readonly (keyof CredentialReportRow)[] = [
  'serviceAccountId',
  'serviceAccount',
  'environment',
  'businessOwner',
  'technicalOwner',
  'keyId',
  'prefix',
  'scopes',
  'createdAt',
  'lastUsedAt',
  'expiresAt',
  'rotationDueAt',
  'status',
];

/**
 * One CSV field (RFC 4180 quoting). A text that a spreadsheet would run as a formula gets a
 * leading apostrophe: owners are free text that anyone with admin rights can set.
 */
export function csvField(value: string | string[] | null): string {
  let text = value === null ? '' : Array.isArray(value) ? value.join(' ') : value;
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n']/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(row: CredentialReportRow): string {
  return `${CREDENTIAL_REPORT_COLUMNS.map((c) => csvField(row[c])).join(',')}\r\n`;
}

export const CSV_HEADER = `${CREDENTIAL_REPORT_COLUMNS.join(',')}\r\n`;
