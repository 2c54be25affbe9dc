import { Body, Controller, Delete, Get, Inject, Param, Post, Query } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiTags } from '@nestjs/swagger';
import type { CommandContext } from '@keyward/auth';
import { NotFound, ValidationFailed, type Page } from '@keyward/core';
import type { OperatorRow } from '@keyward/db';
import {
  CreateOperator,
  CreateTenant,
  DeleteOperator,
  OperatorReader,
  type CreatedOperator,
} from '@keyward/tenants';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { ReasonDto } from '../accounts/service-account.dto';
import { CreateOperatorDto, CreateTenantDto, ListOperatorsQuery } from './tenant.dto';

export interface OperatorView {
  id: string;
  tenantId: string;
  name: string;
  role: string;
  tokenPrefix: string;
  status: string;
  createdAt: string;
  deletedAt: string | null;
}

function operatorView(row: OperatorRow): OperatorView {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    role: row.role,
    tokenPrefix: row.token_prefix,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    deletedAt: row.deleted_at?.toISOString() ?? null,
  };
}

/**
 * The tenants a caller can reach: the bootstrap token every one (undefined), anyone else their own.
 * Another tenant's operator is answered exactly as a missing one.
 */
function reachableTenant(ctx: CommandContext): string | undefined {
  return ctx.caller.kind === 'bootstrap' ? undefined : (ctx.caller.tenantId ?? undefined);
}

@ApiTags('tenants and operators')
@Controller('v1')
export class TenantsController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(OperatorReader) private readonly reader: OperatorReader,
  ) {}

  @Post('tenants')
  @Access({ bootstrap: true })
  async createTenant(@Ctx() ctx: CommandContext, @Body() body: CreateTenantDto) {
    await this.commands.execute(new CreateTenant(ctx, body.id, body.name));
    const row = (await this.reader.tenant(body.id))!;
    return { id: row.id, name: row.name, createdAt: row.created_at.toISOString() };
  }

  @Post('operators')
  @Access({ bootstrap: true, permission: 'manage' })
  async createOperator(
    @Ctx() ctx: CommandContext,
    @Body() body: CreateOperatorDto,
  ): Promise<OperatorView & { token: string }> {
    const own = reachableTenant(ctx);
    const tenantId = own ?? body.tenantId;
    if (tenantId === undefined) {
      throw new ValidationFailed('the bootstrap token must name the tenant', [
        { field: 'tenantId', message: 'is required' },
      ]);
    }
    if (own !== undefined && body.tenantId !== undefined && body.tenantId !== own)
      throw new NotFound(`no tenant ${body.tenantId}`);
    const created = await this.commands.execute<CreateOperator, CreatedOperator>(
      new CreateOperator(ctx, tenantId, body.name, body.role),
    );
    const row = (await this.reader.get(tenantId, created.id))!;
    return { ...operatorView(row), token: created.token };
  }

  @Get('operators')
  @Access({ bootstrap: true, permission: 'read' })
  async listOperators(
    @Ctx() ctx: CommandContext,
    @Query() query: ListOperatorsQuery,
  ): Promise<Page<OperatorView>> {
    const own = reachableTenant(ctx);
    if (own !== undefined && query.tenantId !== undefined && query.tenantId !== own)
      return { items: [], nextCursor: null };
    const page = await this.reader.list(
      own ?? query.tenantId,
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
    return { items: page.items.map(operatorView), nextCursor: page.nextCursor };
  }

  @Get('operators/:id')
  @Access({ bootstrap: true, permission: 'read' })
  async getOperator(@Ctx() ctx: CommandContext, @Param('id') id: string): Promise<OperatorView> {
    const row = await this.reader.get(reachableTenant(ctx), id);
    if (!row) throw new NotFound(`no operator ${id}`);
    return operatorView(row);
  }

  @Delete('operators/:id')
  @Access({ bootstrap: true, permission: 'manage' })
  async deleteOperator(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: ReasonDto,
  ): Promise<OperatorView> {
    const tenantId = reachableTenant(ctx);
    await this.commands.execute(new DeleteOperator(ctx, tenantId, id, body.reason ?? null));
    return operatorView((await this.reader.get(tenantId, id))!);
  }
}
