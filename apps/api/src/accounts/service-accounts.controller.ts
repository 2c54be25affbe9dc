import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  ChangeServiceAccountStatus,
  CreateServiceAccount,
  GrantScopes,
  RevokeScope,
  ServiceAccountReader,
  UpdateServiceAccount,
  type LifecycleAction,
  type ServiceAccountWritten,
} from '@keyward/accounts';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { NotFound, type Page } from '@keyward/core';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { IfMatch } from '../http/if-match';
import { setVersion } from '../http/versioning';
import {
  CreateServiceAccountDto,
  GrantScopesDto,
  ListServiceAccountsQuery,
  ReasonDto,
  UpdateServiceAccountDto,
} from './service-account.dto';
import { serviceAccountView, withSigningSecret, type ServiceAccountView } from './service-account.view';

/** API.md "Service accounts". Each change goes through the command bus; each answer is the read-model row. */
@ApiTags('service accounts')
@Controller('v1/service-accounts')
export class ServiceAccountsController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(ServiceAccountReader) private readonly reader: ServiceAccountReader,
  ) {}

  @Post()
  @Access({ permission: 'manage' })
  async create(
    @Ctx() ctx: CommandContext,
    @Body() body: CreateServiceAccountDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<ServiceAccountView> {
    const { reason, ...input } = body;
    const { id, signingSecret } = await this.commands.execute<CreateServiceAccount, ServiceAccountWritten>(
      new CreateServiceAccount(ctx, { ...input, reason }),
    );
    void res.header('Location', `/v1/service-accounts/${id}`);
    return withSigningSecret(await this.answer(ctx, id, res), signingSecret);
  }

  @Get()
  @Access({ permission: 'read' })
  async list(
    @Ctx() ctx: CommandContext,
    @Query() query: ListServiceAccountsQuery,
  ): Promise<Page<ServiceAccountView>> {
    const page = await this.reader.list(tenantOf(ctx.caller), {
      ...query,
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
    });
    return { items: page.items.map(serviceAccountView), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @Access({ permission: 'read' })
  async get(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return this.answer(ctx, id, res);
  }

  @Patch(':id')
  @Access({ permission: 'manage' })
  async update(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: UpdateServiceAccountDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<ServiceAccountView> {
    const { reason, ...changes } = body;
    const { signingSecret } = await this.commands.execute<UpdateServiceAccount, ServiceAccountWritten>(
      new UpdateServiceAccount(
        ctx,
        id,
        changes as UpdateServiceAccount['changes'],
        reason ?? null,
        expectedVersion,
      ),
    );
    return withSigningSecret(await this.answer(ctx, id, res), signingSecret);
  }

  @Post(':id/disable')
  @HttpCode(200)
  @Access({ permission: 'manage' })
  disable(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: ReasonDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return this.changeStatus(ctx, id, 'disable', body, expectedVersion, res);
  }

  @Post(':id/enable')
  @HttpCode(200)
  @Access({ permission: 'manage' })
  enable(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: ReasonDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return this.changeStatus(ctx, id, 'enable', body, expectedVersion, res);
  }

  @Delete(':id')
  @Access({ permission: 'manage' })
  remove(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: ReasonDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return this.changeStatus(ctx, id, 'delete', body, expectedVersion, res);
  }

  @Post(':id/scopes')
  @HttpCode(200)
  @Access({ permission: 'manage' })
  async grantScopes(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: GrantScopesDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<ServiceAccountView> {
    await this.commands.execute(new GrantScopes(ctx, id, body.scopes, body.reason ?? null, expectedVersion));
    return this.answer(ctx, id, res);
  }

  @Delete(':id/scopes/:scope')
  @Access({ permission: 'manage' })
  async revokeScope(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Param('scope') scope: string,
    @Body() body: ReasonDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<ServiceAccountView> {
    await this.commands.execute(new RevokeScope(ctx, id, scope, body.reason ?? null, expectedVersion));
    return this.answer(ctx, id, res);
  }

  private async changeStatus(
    ctx: CommandContext,
    id: string,
    action: LifecycleAction,
    body: ReasonDto,
    expectedVersion: number | undefined,
    res: FastifyReply,
  ): Promise<ServiceAccountView> {
    await this.commands.execute(
      new ChangeServiceAccountStatus(ctx, id, action, body.reason ?? null, expectedVersion),
    );
    return this.answer(ctx, id, res);
  }

  /** The read-model row, with its version as the ETag. */
  private async answer(ctx: CommandContext, id: string, res: FastifyReply): Promise<ServiceAccountView> {
    const row = await this.reader.get(tenantOf(ctx.caller), id);
    if (!row) throw new NotFound(`no service account ${id}`);
    setVersion(res, row.version);
    return serviceAccountView(row);
  }
}
