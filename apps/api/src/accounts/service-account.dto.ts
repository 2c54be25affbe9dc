import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { ACCOUNT_NAME, BOUNDARY, ENVIRONMENTS, LIMITS, SCOPE, type Environment } from '@keyward/accounts';
import { IsCidr, IsStorableText, Never, OptionalNotNull } from '../http/validators';
import { PageQuery } from '../http/page.query';

const SCOPE_MESSAGE = 'each scope must be product:action or product:* of [a-z0-9._-]';
const BOUNDARY_MESSAGE =
  'each boundary must be type:value segments joined by /, such as site:plant-7/asset-group:pumps';

export class RotationPolicyDto {
  @ApiProperty({ example: 90, minimum: 1, maximum: LIMITS.maxKeyAgeDays })
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxKeyAgeDays)
  maxKeyAgeDays!: number;

  @ApiProperty({ example: 14, minimum: 0 })
  @IsInt()
  @Min(0)
  notifyBeforeDays!: number;

  @ApiProperty({ example: false })
  @IsBoolean()
  autoRotate!: boolean;
}

export class SecretDeliveryDto {
  @ApiProperty({ example: 'https://vault-adapter.internal/keys' })
  @IsString()
  @MaxLength(2048)
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false })
  url!: string;
}

/** Fields a create and a change share. */
class AccountFieldsDto {
  @ApiPropertyOptional({ maxLength: LIMITS.text, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.text)
  description?: string | null;

  @ApiPropertyOptional({ maxLength: LIMITS.text, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.text)
  intendedScope?: string | null;

  @ApiPropertyOptional({ type: [String], example: ['site:plant-7'] })
  @OptionalNotNull()
  @IsArray()
  @ArrayMaxSize(LIMITS.boundaries)
  @IsString({ each: true })
  @MaxLength(LIMITS.boundaryLength, { each: true })
  @Matches(BOUNDARY, { each: true, message: BOUNDARY_MESSAGE })
  boundaries?: string[];

  @ApiPropertyOptional({ type: [String], example: ['10.20.0.0/16'] })
  @OptionalNotNull()
  @IsArray()
  @ArrayMaxSize(LIMITS.cidrs)
  @IsCidr({ each: true })
  allowedCidrs?: string[];

  @ApiPropertyOptional({ default: true })
  @OptionalNotNull()
  @IsBoolean()
  abuseDetection?: boolean;

  @ApiPropertyOptional({ type: RotationPolicyDto, nullable: true })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => RotationPolicyDto)
  rotationPolicy?: RotationPolicyDto | null;

  @ApiPropertyOptional({ type: SecretDeliveryDto, nullable: true })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => SecretDeliveryDto)
  secretDelivery?: SecretDeliveryDto | null;

  @ApiPropertyOptional({ maxLength: LIMITS.text, description: 'why; recorded with the change' })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.text)
  reason?: string;
}

export class CreateServiceAccountDto extends AccountFieldsDto {
  @ApiProperty({ example: 'nightly-digest-summariser', pattern: ACCOUNT_NAME.source })
  @IsString()
  @Matches(ACCOUNT_NAME, { message: 'name must be 3 to 64 of [a-z0-9-]' })
  name!: string;

  @ApiProperty({ enum: ENVIRONMENTS })
  @IsIn(ENVIRONMENTS)
  environment!: Environment;

  @ApiProperty({ example: 'support-ops' })
  @IsString()
  @Length(1, LIMITS.owner)
  businessOwner!: string;

  @ApiProperty({ example: 'ai-platform' })
  @IsString()
  @Length(1, LIMITS.owner)
  technicalOwner!: string;

  @ApiPropertyOptional({ type: [String], example: ['tickets:read'], description: "the account's ceiling" })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(LIMITS.scopes)
  @IsString({ each: true })
  @Matches(SCOPE, { each: true, message: SCOPE_MESSAGE })
  allowedScopes?: string[];
}

export class UpdateServiceAccountDto extends AccountFieldsDto {
  @ApiPropertyOptional({ pattern: ACCOUNT_NAME.source })
  @OptionalNotNull()
  @IsString()
  @Matches(ACCOUNT_NAME, { message: 'name must be 3 to 64 of [a-z0-9-]' })
  name?: string;

  @ApiPropertyOptional()
  @OptionalNotNull()
  @IsString()
  @Length(1, LIMITS.owner)
  businessOwner?: string;

  @ApiPropertyOptional()
  @OptionalNotNull()
  @IsString()
  @Length(1, LIMITS.owner)
  technicalOwner?: string;

  // Only when sent: `ValidateIf(() => true)` ran Never on every PATCH, so each one answered 400.
  @ValidateIf((_body: object, value: unknown) => value !== undefined)
  @Never("environment cannot be changed: an account's environment is fixed at birth")
  environment?: never;

  @ValidateIf((_body: object, value: unknown) => value !== undefined)
  @Never(
    'allowedScopes is changed through POST and DELETE .../scopes, so that each grant is its own recorded decision',
  )
  allowedScopes?: never;
}

export class ReasonDto {
  @ApiPropertyOptional({ maxLength: LIMITS.text })
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.text)
  reason?: string;
}

export class GrantScopesDto extends ReasonDto {
  @ApiProperty({ type: [String], example: ['tickets:write'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIMITS.scopes)
  @IsString({ each: true })
  @Matches(SCOPE, { each: true, message: SCOPE_MESSAGE })
  scopes!: string[];
}

/** Query strings do not pass the JSON body parser's text check, so their free-text fields check here. */
export class ListServiceAccountsQuery extends PageQuery {
  @ApiPropertyOptional({ enum: ENVIRONMENTS })
  @IsOptional()
  @IsIn(ENVIRONMENTS)
  environment?: Environment;

  @ApiPropertyOptional({ enum: ['active', 'disabled', 'deleted'] })
  @IsOptional()
  @IsIn(['active', 'disabled', 'deleted'])
  status?: string;

  @ApiPropertyOptional({ description: 'business or technical owner' })
  @IsOptional()
  @IsString()
  @Length(1, LIMITS.owner)
  @IsStorableText()
  owner?: string;

  @ApiPropertyOptional({ description: 'text in name, description or intended scope' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  @IsStorableText()
  q?: string;
}
