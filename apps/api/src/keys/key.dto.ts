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
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { BOUNDARY, LIMITS, SCOPE } from '@keyward/accounts';
import { KEY_PREFIX_SEARCH } from '@keyward/keys';
import { PageQuery } from '../http/page.query';
import { IsCidr, OptionalNotNull } from '../http/validators';

export class RateLimitDto {
  @ApiProperty({ example: 100, minimum: 1, maximum: 1_000_000 })
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  limit!: number;

  @ApiProperty({ example: 60, minimum: 1, maximum: 86_400 })
  @IsInt()
  @Min(1)
  @Max(86_400)
  windowSeconds!: number;
}

export class IssueKeyDto {
  @ApiProperty({ example: 'digest-worker-1' })
  @IsString()
  @Length(1, 100)
  name!: string;

  @ApiProperty({ type: [String], example: ['tickets:read'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIMITS.scopes)
  @IsString({ each: true })
  @Matches(SCOPE, { each: true, message: 'each scope must be product:action or product:* of [a-z0-9._-]' })
  scopes!: string[];

  @ApiPropertyOptional({
    example: 90,
    description: "at most the environment's maximum; default that maximum",
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxKeyAgeDays)
  expiresInDays?: number;

  @ApiPropertyOptional({ type: [String], example: ['site:plant-7/asset-group:pumps'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(LIMITS.boundaries)
  @IsString({ each: true })
  @MaxLength(LIMITS.boundaryLength, { each: true })
  @Matches(BOUNDARY, { each: true, message: 'each boundary must be type:value segments joined by /' })
  boundaries?: string[];

  @ApiPropertyOptional({ type: [String], example: ['10.20.1.0/24'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(LIMITS.cidrs)
  @IsCidr({ each: true })
  allowedCidrs?: string[];

  @ApiPropertyOptional({ type: RateLimitDto, nullable: true })
  @ValidateIf((_o: object, v: unknown) => v !== undefined && v !== null)
  @IsObject()
  @ValidateNested()
  @Type(() => RateLimitDto)
  rateLimit?: RateLimitDto | null;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.text)
  reason?: string;
}

export class RotateKeyDto {
  @ApiPropertyOptional({ default: 86_400, minimum: 0, maximum: 604_800 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(604_800)
  gracePeriodSeconds?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.text)
  reason?: string;
}

export class RevokeKeyDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.text)
  reason?: string;

  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @IsBoolean()
  emergency?: boolean;
}

export class FindKeysQuery extends PageQuery {
  @ApiProperty({ example: 'kw_live_AbC1', description: 'the start of a visible key prefix' })
  @IsString()
  @Matches(KEY_PREFIX_SEARCH, {
    message: 'prefix must look like kw_<live|stage|dev>_<up to 20 id characters>',
  })
  prefix!: string;
}

export class ListKeysQuery extends PageQuery {}

export class MaxKeyLifetimeDto {
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxKeyAgeDays)
  production!: number;

  @IsInt()
  @Min(1)
  @Max(LIMITS.maxKeyAgeDays)
  staging!: number;

  @IsInt()
  @Min(1)
  @Max(LIMITS.maxKeyAgeDays)
  development!: number;
}

export class PolicyDto {
  @ApiPropertyOptional({ type: MaxKeyLifetimeDto })
  @OptionalNotNull()
  @IsObject()
  @ValidateNested()
  @Type(() => MaxKeyLifetimeDto)
  maxKeyLifetimeDays?: MaxKeyLifetimeDto;

  @ApiPropertyOptional({ example: 10 })
  @OptionalNotNull()
  @IsInt()
  @Min(1)
  @Max(1000)
  maxActiveKeys?: number;

  @ApiPropertyOptional({ type: [String], example: ['write', 'approve', 'admin', 'delete', '*'] })
  @OptionalNotNull()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @Matches(/^(?:[a-z0-9._-]{1,64}|\*)$/, { each: true, message: 'each action is [a-z0-9._-] or *' })
  highRiskActions?: string[];

  @ApiPropertyOptional({ example: 90 })
  @OptionalNotNull()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxKeyAgeDays)
  unusedAfterDays?: number;

  @ApiPropertyOptional({ nullable: true, example: null })
  @ValidateIf((_o: object, v: unknown) => v !== undefined && v !== null)
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxKeyAgeDays)
  revokeUnusedAfterDays?: number | null;

  @ApiPropertyOptional({ enum: ['revoke', 'flag'] })
  @OptionalNotNull()
  @IsIn(['revoke', 'flag'])
  exposureAction?: 'revoke' | 'flag';

  @ApiPropertyOptional({ description: 'why; recorded with the change' })
  @OptionalNotNull()
  @IsString()
  @MaxLength(LIMITS.text)
  reason?: string;
}
