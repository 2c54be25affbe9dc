import type { ServiceAccountRow } from '@keyward/db';

/** The account as API.md shows it. Times are ISO-8601 UTC with milliseconds. */
export interface ServiceAccountView {
  id: string;
  tenantId: string;
  name: string;
  environment: string;
  description: string | null;
  intendedScope: string | null;
  businessOwner: string;
  technicalOwner: string;
  allowedScopes: string[];
  boundaries: string[];
  allowedCidrs: string[];
  abuseDetection: boolean;
  rotationPolicy: ServiceAccountRow['rotation_policy'];
  secretDelivery: { url: string } | null;
  status: string;
  activeKeyCount: number;
  createdAt: string;
  updatedAt: string;
  firstSeenAt: string | null;
  lastSeenAt: string | null;
  version: number;
}

export function serviceAccountView(row: ServiceAccountRow): ServiceAccountView {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    environment: row.environment,
    description: row.description,
    intendedScope: row.intended_scope,
    businessOwner: row.business_owner,
    technicalOwner: row.technical_owner,
    allowedScopes: row.allowed_scopes,
    boundaries: row.boundaries,
    allowedCidrs: row.allowed_cidrs,
    abuseDetection: row.abuse_detection,
    rotationPolicy: row.rotation_policy,
    secretDelivery: row.secret_delivery_url ? { url: row.secret_delivery_url } : null,
    status: row.status,
    activeKeyCount: row.active_key_count,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    firstSeenAt: row.first_seen_at?.toISOString() ?? null,
    lastSeenAt: row.last_seen_at?.toISOString() ?? null,
    version: row.version,
  };
}
