import type { CommandContext } from '@keyward/auth';
import type { Environment } from './rules';
import type { RotationPolicy, SecretDelivery, ServiceAccountChanges } from './service-account.events';

/** Commands on service accounts; each names the account version it was based on, if any (If-Match). */
export interface CreateServiceAccountInput {
  name: string;
  environment: Environment;
  description?: string | null;
  intendedScope?: string | null;
  businessOwner: string;
  technicalOwner: string;
  allowedScopes?: string[];
  boundaries?: string[];
  allowedCidrs?: string[];
  abuseDetection?: boolean;
  rotationPolicy?: RotationPolicy | null;
  secretDelivery?: SecretDelivery | null;
  reason?: string | null;
}

export class CreateServiceAccount {
  constructor(
    readonly ctx: CommandContext,
    readonly input: CreateServiceAccountInput,
  ) {}
}

export class UpdateServiceAccount {
  constructor(
    readonly ctx: CommandContext,
    readonly id: string,
    readonly changes: ServiceAccountChanges,
    readonly reason: string | null,
    readonly expectedVersion?: number,
  ) {}
}

export type LifecycleAction = 'disable' | 'enable' | 'delete';

export class ChangeServiceAccountStatus {
  constructor(
    readonly ctx: CommandContext,
    readonly id: string,
    readonly action: LifecycleAction,
    readonly reason: string | null,
    readonly expectedVersion?: number,
  ) {}
}

export class GrantScopes {
  constructor(
    readonly ctx: CommandContext,
    readonly id: string,
    readonly scopes: string[],
    readonly reason: string | null,
    readonly expectedVersion?: number,
  ) {}
}

export class RevokeScope {
  constructor(
    readonly ctx: CommandContext,
    readonly id: string,
    readonly scope: string,
    readonly reason: string | null,
    readonly expectedVersion?: number,
  ) {}
}
