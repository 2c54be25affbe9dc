import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Length, Matches } from 'class-validator';
import { ROLES, type Role } from '@keyward/auth';
import { TENANT_ID } from '@keyward/tenants';
import { PageQuery } from '../http/page.query';

export class CreateTenantDto {
  @ApiProperty({ example: 'acme', pattern: TENANT_ID.source })
  @IsString()
  @Matches(TENANT_ID, { message: 'id must be 3 to 40 of [a-z0-9-], starting with a letter or digit' })
  id!: string;

  @ApiProperty({ example: 'Acme Corp' })
  @IsString()
  @Length(1, 100)
  name!: string;
}

export class CreateOperatorDto {
  @ApiPropertyOptional({
    description: "required with the bootstrap token; otherwise the caller's own tenant",
  })
  @IsOptional()
  @IsString()
  @Matches(TENANT_ID, { message: 'tenantId is not a tenant id' })
  tenantId?: string;

  @ApiProperty({ example: 'alice@acme.example' })
  @IsString()
  @Length(1, 100)
  name!: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES)
  role!: Role;
}

export class ListOperatorsQuery extends PageQuery {
  @ApiPropertyOptional({ description: 'bootstrap token only: one tenant' })
  @IsOptional()
  @IsString()
  @Matches(TENANT_ID)
  tenantId?: string;
}
