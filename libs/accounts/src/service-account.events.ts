import type { RotationPolicy } from '@keyward/keys';
import type { Environment } from './rules';

/**
 * The service account's event catalogue. Payloads are versioned by `schemaVersion` on the
 * stored event; a change of shape gets an upcaster here, never a rewrite of stored events.
 */

/** The rotation policy is the keys' idea (they are what rotates); accounts carry it. */
export type { RotationPolicy };

export interface SecretDelivery {
  url: string;
}

/** The fields an operator may change after creation (environment is fixed at birth). */
export interface ServiceAccountChanges {
  name?: string;
  description?: string | null;
  intendedScope?: string | null;
  businessOwner?: string;
  technicalOwner?: string;
  boundaries?: string[];
  allowedCidrs?: string[];
  abuseDetection?: boolean;
  rotationPolicy?: RotationPolicy | null;
  secretDelivery?: SecretDelivery | null;
}

export interface ServiceAccountCreatedV1 {
  id: string;
  tenantId: string;
  name: string;
  environment: Environment;
  description: string | null;
  intendedScope: string | null;
  businessOwner: string;
  technicalOwner: string;
  allowedScopes: string[];
  boundaries: string[];
  allowedCidrs: string[];
  abuseDetection: boolean;
  rotationPolicy: RotationPolicy | null;
  secretDelivery: SecretDelivery | null;
}

export type ServiceAccountEvent =
  | { type: 'ServiceAccountCreated'; data: ServiceAccountCreatedV1 }
  | { type: 'ServiceAccountUpdated'; data: { changes: ServiceAccountChanges } }
  | { type: 'ServiceAccountDisabled'; data: Record<string, never> }
  | { type: 'ServiceAccountEnabled'; data: Record<string, never> }
  | { type: 'ServiceAccountDeleted'; data: Record<string, never> }
  | { type: 'ScopesGranted'; data: { scopes: string[] } }
  | { type: 'ScopeRevoked'; data: { scope: string } };

export type ServiceAccountEventType = ServiceAccountEvent['type'];

export const SERVICE_ACCOUNT_EVENT_TYPES: readonly ServiceAccountEventType[] = [
  'ServiceAccountCreated',
  'ServiceAccountUpdated',
  'ServiceAccountDisabled',
  'ServiceAccountEnabled',
  'ServiceAccountDeleted',
  'ScopesGranted',
  'ScopeRevoked',
];

export { SERVICE_ACCOUNT_STREAM } from '@keyward/keys';

export function isServiceAccountEvent(event: { type: string }): event is ServiceAccountEvent {
  return (SERVICE_ACCOUNT_EVENT_TYPES as readonly string[]).includes(event.type);
}
