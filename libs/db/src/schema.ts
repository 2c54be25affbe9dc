import type { ColumnType, Insertable, Selectable } from 'kysely';

/**
 * Typed tables for Kysely. int8 and xid8 come back from pg as strings (we never let pg guess
 * a JavaScript number for them); code that needs arithmetic parses them with BigInt.
 */
type Int8 = ColumnType<string, string | number | bigint, string | number | bigint>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface EventsTable {
  position: ColumnType<string, never, never>;
  transaction_id: ColumnType<string, never, never>;
  tenant_id: string;
  stream_id: string;
  stream_type: string;
  stream_version: Int8;
  event_id: string;
  type: string;
  schema_version: number;
  data: Json<unknown>;
  metadata: Json<unknown>;
  occurred_at: Timestamp;
  chain_seq: Int8;
  prev_hash: string;
  hash: string;
}

export interface StreamsTable {
  stream_id: string;
  tenant_id: string;
  stream_type: string;
  version: Int8;
}

export interface ChainHeadsTable {
  tenant_id: string;
  seq: Int8;
  hash: string;
}

export interface ProjectionCheckpointsTable {
  name: string;
  transaction_id: ColumnType<string, string, string>;
  position: Int8;
  updated_at: Timestamp;
}

export interface TenantsTable {
  id: string;
  name: string;
  created_at: Timestamp;
  version: number;
}

export interface OperatorsTable {
  id: string;
  tenant_id: string;
  name: string;
  role: string;
  token_hash: string;
  token_prefix: string;
  status: string;
  created_at: Timestamp;
  deleted_at: Timestamp | null;
  version: number;
}

export interface RotationPolicy {
  maxKeyAgeDays: number;
  notifyBeforeDays: number;
  autoRotate: boolean;
}

export interface ServiceAccountsTable {
  id: string;
  tenant_id: string;
  name: string;
  environment: string;
  description: string | null;
  intended_scope: string | null;
  business_owner: string;
  technical_owner: string;
  allowed_scopes: string[];
  boundaries: string[];
  allowed_cidrs: string[];
  abuse_detection: boolean;
  rotation_policy: Json<RotationPolicy | null>;
  secret_delivery_url: string | null;
  status: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  version: number;
}

export interface KeysTable {
  id: string;
  tenant_id: string;
  service_account_id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  environment: string;
  scopes: string[];
  boundaries: string[];
  allowed_cidrs: string[];
  rate_limit: Json<{ limit: number; windowSeconds: number } | null>;
  expires_at: Timestamp;
  grace_ends_at: Timestamp | null;
  replaces: string | null;
  replaced_by: string | null;
  pending_replacement: string | null;
  revoked_at: Timestamp | null;
  expired_at: Timestamp | null;
  exposed_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  version: number;
}

export interface TenantPoliciesTable {
  tenant_id: string;
  policy: Json<Record<string, unknown>>;
  updated_at: Timestamp;
  version: number;
}

export interface UsageMinutesTable {
  tenant_id: string;
  minute: Timestamp;
  key_id: string;
  service_account_id: string;
  code: string;
  source_ip: string;
  system: string;
  count: Int8;
}

export interface UsageBatchesTable {
  batch: string;
  applied_at: Timestamp;
}

/** Where the abuse-signal evaluation over usage_minutes has got to (libs/signals usage-evaluation). */
export interface UsageEvaluationCheckpointsTable {
  name: string;
  /** The last minute (its start) evaluated in full. */
  last_minute: Timestamp;
  /** Commits of the minute after last_minute already made (a minute with many signals is split). */
  committed_parts: ColumnType<number, number | undefined, number>;
  updated_at: Timestamp;
}

/**
 * A minute a detector of the usage evaluation could not evaluate (it threw, or ran past its
 * budget): the minute was checkpointed without that detector's sightings.
 */
export interface UsageEvaluationSkipsTable {
  minute: Timestamp;
  /** The detector's name, or `raise` when the minute's sightings could not be raised. */
  detector: string;
  /** `timeout` or `failed`. */
  reason: string;
  error: string;
  skipped_at: Timestamp;
}

export interface WebhooksTable {
  id: string;
  tenant_id: string;
  url: string;
  events: string[];
  created_at: Timestamp;
}

export interface WebhookSecretsTable {
  webhook_id: string;
  tenant_id: string;
  /** AES-256-GCM ciphertext of the signing secret (libs/webhooks secret-box); never the secret. */
  ciphertext: string;
  created_at: Timestamp;
}

export interface SecretDeliverySecretsTable {
  service_account_id: string;
  tenant_id: string;
  /** AES-256-GCM ciphertext of the secretDelivery signing secret (libs/webhooks secret-box); never the secret. */
  ciphertext: string;
  created_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  webhook_id: string;
  event_id: string;
  event: string;
  body: string;
  status: ColumnType<string, string | undefined, string>;
  attempts: ColumnType<number, number | undefined, number>;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Timestamp;
  delivered_at: Timestamp | null;
}

export interface KeyUsageTable {
  key_id: string;
  last_used_at: Timestamp;
}

export interface AccountUsageTable {
  service_account_id: string;
  first_seen_at: Timestamp;
  last_seen_at: Timestamp;
}

export interface SignalsTable {
  id: string;
  tenant_id: string;
  type: string;
  severity: string;
  status: string;
  service_account_id: string;
  key_id: string | null;
  /** The dedupe subject: the key's id, or the account's for an account-wide signal. */
  subject: string;
  detail: Json<Record<string, unknown>>;
  count: number;
  first_seen_at: Timestamp;
  last_seen_at: Timestamp;
  acknowledged_at: Timestamp | null;
  acknowledged_note: string | null;
  resolved_at: Timestamp | null;
  resolved_note: string | null;
  auto_resolved: boolean;
  version: number;
}

export interface Database {
  events: EventsTable;
  streams: StreamsTable;
  chain_heads: ChainHeadsTable;
  projection_checkpoints: ProjectionCheckpointsTable;
  tenants: TenantsTable;
  operators: OperatorsTable;
  service_accounts: ServiceAccountsTable;
  keys: KeysTable;
  tenant_policies: TenantPoliciesTable;
  usage_minutes: UsageMinutesTable;
  usage_batches: UsageBatchesTable;
  usage_evaluation_checkpoints: UsageEvaluationCheckpointsTable;
  usage_evaluation_skips: UsageEvaluationSkipsTable;
  webhooks: WebhooksTable;
  webhook_secrets: WebhookSecretsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  secret_delivery_secrets: SecretDeliverySecretsTable;
  key_usage: KeyUsageTable;
  account_usage: AccountUsageTable;
  signals: SignalsTable;
}

export type EventRow = Selectable<EventsTable>;
export type ServiceAccountRow = Selectable<ServiceAccountsTable>;
export type NewServiceAccountRow = Insertable<ServiceAccountsTable>;
export type OperatorRow = Selectable<OperatorsTable>;
export type TenantRow = Selectable<TenantsTable>;
export type KeyRow = Selectable<KeysTable>;
