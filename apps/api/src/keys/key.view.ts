import { keyStatusAt, type KeyListing, type KeyStatus } from '@keyward/keys';

/** A key as API.md shows it (never its secret or hash); status as of `now`. */
export interface KeyView {
  id: string;
  serviceAccountId: string;
  name: string;
  prefix: string;
  scopes: string[];
  boundaries: string[];
  allowedCidrs: string[];
  rateLimit: { limit: number; windowSeconds: number } | null;
  environment: string;
  status: KeyStatus;
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
  replaces: string | null;
  replacedBy: string | null;
  graceEndsAt: string | null;
  revokedAt: string | null;
  version: number;
}

export function keyView(row: KeyListing, now: Date): KeyView {
  const expiresAt = row.expires_at.toISOString();
  const graceEndsAt = row.grace_ends_at?.toISOString() ?? null;
  return {
    id: row.id,
    serviceAccountId: row.service_account_id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    boundaries: row.boundaries,
    allowedCidrs: row.allowed_cidrs,
    rateLimit: row.rate_limit,
    environment: row.environment,
    status: keyStatusAt(
      { revokedAt: row.revoked_at, expiredAt: row.expired_at, expiresAt, graceEndsAt },
      now,
    ),
    createdAt: row.created_at.toISOString(),
    expiresAt,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    replaces: row.replaces,
    replacedBy: row.replaced_by,
    graceEndsAt,
    revokedAt: row.revoked_at?.toISOString() ?? null,
    version: row.version,
  };
}
