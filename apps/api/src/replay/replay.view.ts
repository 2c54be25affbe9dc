import { ApiProperty } from '@nestjs/swagger';
import { ENVIRONMENTS } from '@keyward/accounts';
import type { ActorType } from '@keyward/event-store';
import type { KeyStatus } from '@keyward/keys';
import { RotationPolicyDto, SecretDeliveryDto } from '../accounts/service-account.dto';
import type { ServiceAccountView } from '../accounts/service-account.view';
import type { KeyView } from '../keys/key.view';

/*
 * The answers of GET /v1/service-accounts/{id}/state and GET /v1/access. The classes document
 * them in OpenAPI; their types are the live views' own, less the fields usage keeps (first and
 * last use), which no event records and so no replay can show.
 */

const KEY_STATUSES: KeyStatus[] = ['active', 'rotating', 'expired', 'revoked'];

class RateLimitView {
  @ApiProperty({ example: 100 }) limit!: number;
  @ApiProperty({ example: 60 }) windowSeconds!: number;
}

export class KeyStateView implements Omit<KeyView, 'lastUsedAt'> {
  @ApiProperty({ example: 'key_01HZY3S1W4K6M9Q2R5T8' }) id!: string;
  @ApiProperty() serviceAccountId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: 'kw_stage_01HZY3S1W4K6M9Q2R5T8' }) prefix!: string;
  @ApiProperty({ type: [String], description: 'as they stood at asOf (narrowed with the ceiling)' })
  scopes!: string[];
  @ApiProperty({ type: [String] }) boundaries!: string[];
  @ApiProperty({ type: [String] }) allowedCidrs!: string[];
  @ApiProperty({ type: RateLimitView, nullable: true }) rateLimit!: RateLimitView | null;
  @ApiProperty({ enum: ENVIRONMENTS }) environment!: string;
  @ApiProperty({
    enum: KEY_STATUSES,
    description: 'at asOf: a key past its expiry or its rotation grace then is `expired`, event or not',
  })
  status!: KeyStatus;
  @ApiProperty() createdAt!: string;
  @ApiProperty() expiresAt!: string;
  @ApiProperty({ nullable: true, type: String }) replaces!: string | null;
  @ApiProperty({ nullable: true, type: String }) replacedBy!: string | null;
  @ApiProperty({ nullable: true, type: String }) graceEndsAt!: string | null;
  @ApiProperty({ nullable: true, type: String }) revokedAt!: string | null;
  @ApiProperty({ description: "the key stream's version at asOf" }) version!: number;
}

export class AccountStateView implements Omit<ServiceAccountView, 'firstSeenAt' | 'lastSeenAt'> {
  @ApiProperty({ example: 'sa_01HZY3S1W4K6M9Q2R5T8V0' }) id!: string;
  @ApiProperty() tenantId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ENVIRONMENTS }) environment!: ServiceAccountView['environment'];
  @ApiProperty({ nullable: true, type: String }) description!: string | null;
  @ApiProperty({ nullable: true, type: String }) intendedScope!: string | null;
  @ApiProperty() businessOwner!: string;
  @ApiProperty() technicalOwner!: string;
  @ApiProperty({ type: [String], description: "the account's ceiling at asOf" }) allowedScopes!: string[];
  @ApiProperty({ type: [String] }) boundaries!: string[];
  @ApiProperty({ type: [String] }) allowedCidrs!: string[];
  @ApiProperty() abuseDetection!: boolean;
  @ApiProperty({ type: RotationPolicyDto, nullable: true }) rotationPolicy!: RotationPolicyDto | null;
  @ApiProperty({ type: SecretDeliveryDto, nullable: true }) secretDelivery!: SecretDeliveryDto | null;
  @ApiProperty({ enum: ['active', 'disabled', 'deleted'] }) status!: ServiceAccountView['status'];
  @ApiProperty({ description: 'keys live (active or rotating) at asOf' }) activeKeyCount!: number;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
  @ApiProperty({ description: "the account stream's version at asOf" }) version!: number;
  @ApiProperty({ type: [KeyStateView], description: 'every key issued by asOf, oldest first' })
  keys!: KeyStateView[];
  @ApiProperty({ description: 'the time answered for' }) asOf!: string;
}

class ActorView {
  @ApiProperty({ enum: ['bootstrap', 'operator', 'service-account', 'system'] }) type!: ActorType;
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
}

export class GrantingEventView {
  @ApiProperty({ description: "the event's global position" }) position!: number;
  @ApiProperty() streamId!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ example: 'ScopesGranted' }) type!: string;
  @ApiProperty() occurredAt!: string;
  @ApiProperty({ type: ActorView }) actor!: ActorView;
  @ApiProperty({ nullable: true, type: String }) reason!: string | null;
  @ApiProperty() correlationId!: string;
  @ApiProperty({ type: [String], description: 'the scopes covering the asked one that it granted' })
  scopes!: string[];
}

class AccessAccountView {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ENVIRONMENTS }) environment!: string;
}

class AccessKeyView {
  @ApiProperty() id!: string;
  @ApiProperty() prefix!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['active', 'rotating'] }) status!: KeyStatus;
  @ApiProperty() expiresAt!: string;
  @ApiProperty({ nullable: true, type: String, description: 'the end of its rotation grace' })
  graceEndsAt!: string | null;
}

class GrantedByView {
  @ApiProperty({
    type: [GrantingEventView],
    description:
      "ServiceAccountCreated / ScopesGranted that put the covering scopes on the account's ceiling",
  })
  ceiling!: GrantingEventView[];
  @ApiProperty({
    type: [GrantingEventView],
    description: "the key's KeyIssued and, for a key made by a rotation, the old key's KeyRotated",
  })
  key!: GrantingEventView[];
}

export class AccessItemView {
  @ApiProperty({ type: AccessAccountView }) account!: AccessAccountView;
  @ApiProperty({ type: AccessKeyView }) key!: AccessKeyView;
  @ApiProperty({ type: [String], description: "the key's scopes that cover the asked scope" })
  matchingScopes!: string[];
  @ApiProperty({ type: GrantedByView }) grantedBy!: GrantedByView;
}

export class AccessView {
  @ApiProperty({ example: 'tickets:read' }) scope!: string;
  @ApiProperty({ description: 'the time answered for' }) asOf!: string;
  @ApiProperty({
    type: [AccessItemView],
    description: 'every key that could have used the scope then, by account name, then oldest key first',
  })
  items!: AccessItemView[];
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'the next page; it carries the asOf of the first page, so every page answers for one time',
  })
  nextCursor!: string | null;
}
