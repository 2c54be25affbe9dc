import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, IsString, MaxLength } from 'class-validator';
import { GRANULARITIES, type Granularity } from '@keyward/usage';

export class UsageQueryDto {
  @ApiPropertyOptional({ example: 'sa_01HZY3S1W4K6M9Q2R5T8V0' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  serviceAccountId?: string;

  @ApiPropertyOptional({ example: 'key_01HZY3S1W4K6M9Q2R5T8' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  keyId?: string;

  @ApiPropertyOptional({
    example: '2026-03-01T00:00:00Z',
    description: 'inclusive; defaults to `to` minus an hour, a day or 30 days by granularity',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({ example: '2026-03-02T00:00:00Z', description: 'exclusive; defaults to now' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;

  @ApiPropertyOptional({ enum: GRANULARITIES, default: 'hour' })
  @IsOptional()
  @IsIn(GRANULARITIES)
  granularity?: Granularity;
}
