import { Body, Controller, Get, HttpCode, Inject, Param, Patch, Post, Query, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ServiceAccountReader } from '@keyward/accounts';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { CLOCK, NotFound, type Clock, type Page } from '@keyward/core';
import {
  ChangePolicyCommand,
  IssueKeyCommand,
  KeyReader,
  RevokeAccountKeysCommand,
  RevokeKeyCommand,
  RotateKeyCommand,
  type IssuedKey,
  type TenantPolicy,
} from '@keyward/keys';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { IfMatch } from '../http/if-match';
import { setVersion } from '../http/versioning';
import { FindKeysQuery, IssueKeyDto, ListKeysQuery, PolicyDto, RevokeKeyDto, RotateKeyDto } from './key.dto';
import { ReasonDto } from '../accounts/service-account.dto';
import { keyView, type KeyView } from './key.view';

const DEFAULT_GRACE_SECONDS = 86_400;

/** API.md "Keys", "Verify" and "Tenant policy". */
@ApiTags('keys')
@Controller('v1')
export class KeysController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(KeyReader) private readonly keys: KeyReader,
    @Inject(ServiceAccountReader) private readonly accounts: ServiceAccountReader,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Post('service-accounts/:id/keys')
  @Access({ permission: 'manage' })
  async issue(
    @Ctx() ctx: CommandContext,
    @Param('id') accountId: string,
    @Body() body: IssueKeyDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<KeyView & { secret: string }> {
    const { reason, ...input } = body;
    const issued = await this.commands.execute<IssueKeyCommand, IssuedKey>(
      new IssueKeyCommand(
        ctx,
        accountId,
        {
          ...input,
          boundaries: input.boundaries ?? [],
          allowedCidrs: input.allowedCidrs ?? [],
          rateLimit: input.rateLimit ?? null,
        },
        reason ?? null,
      ),
    );
    return this.withSecret(ctx, issued, res);
  }

  @Get('service-accounts/:id/keys')
  @Access({ permission: 'read' })
  async listForAccount(
    @Ctx() ctx: CommandContext,
    @Param('id') accountId: string,
    @Query() query: ListKeysQuery,
  ): Promise<Page<KeyView>> {
    const tenantId = tenantOf(ctx.caller);
    if (!(await this.accounts.get(tenantId, accountId)))
      throw new NotFound(`no service account ${accountId}`);
    const page = await this.keys.byAccount(
      tenantId,
      accountId,
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
    const now = this.clock.now();
    return { items: page.items.map((row) => keyView(row, now)), nextCursor: page.nextCursor };
  }

  @Get('keys')
  @Access({ permission: 'read' })
  async findByPrefix(@Ctx() ctx: CommandContext, @Query() query: FindKeysQuery): Promise<Page<KeyView>> {
    const page = await this.keys.byPrefix(
      tenantOf(ctx.caller),
      query.prefix,
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
    const now = this.clock.now();
    return { items: page.items.map((row) => keyView(row, now)), nextCursor: page.nextCursor };
  }

  @Get('keys/:keyId')
  @Access({ permission: 'read' })
  async get(
    @Ctx() ctx: CommandContext,
    @Param('keyId') keyId: string,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<KeyView> {
    return this.answer(ctx, keyId, res);
  }

  @Post('keys/:keyId/rotate')
  @Access({ permission: 'manage' })
  async rotate(
    @Ctx() ctx: CommandContext,
    @Param('keyId') keyId: string,
    @Body() body: RotateKeyDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<KeyView & { secret: string }> {
    const issued = await this.commands.execute<RotateKeyCommand, IssuedKey>(
      new RotateKeyCommand(
        ctx,
        keyId,
        body.gracePeriodSeconds ?? DEFAULT_GRACE_SECONDS,
        body.reason ?? null,
        expectedVersion,
      ),
    );
    return this.withSecret(ctx, issued, res);
  }

  @Post('keys/:keyId/revoke')
  @HttpCode(200)
  @Access({ permission: 'manage' })
  async revoke(
    @Ctx() ctx: CommandContext,
    @Param('keyId') keyId: string,
    @Body() body: RevokeKeyDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<KeyView> {
    await this.commands.execute(
      new RevokeKeyCommand(ctx, keyId, body.reason ?? null, body.emergency ?? false, expectedVersion),
    );
    return this.answer(ctx, keyId, res);
  }

  @Post('service-accounts/:id/revoke-keys')
  @HttpCode(200)
  @Access({ permission: 'manage' })
  async revokeAll(
    @Ctx() ctx: CommandContext,
    @Param('id') accountId: string,
    @Body() body: ReasonDto,
    @IfMatch() expectedVersion: number | undefined,
  ): Promise<{ serviceAccountId: string; revoked: string[] }> {
    const revoked = await this.commands.execute<RevokeAccountKeysCommand, string[]>(
      new RevokeAccountKeysCommand(ctx, accountId, body.reason ?? null, expectedVersion),
    );
    return { serviceAccountId: accountId, revoked };
  }

  @Get('policy')
  @Access({ permission: 'read' })
  async policy(
    @Ctx() ctx: CommandContext,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<TenantPolicy & { version: number }> {
    const { policy, version } = await this.keys.policy(tenantOf(ctx.caller));
    setVersion(res, version);
    return { ...policy, version };
  }

  @Patch('policy')
  @Access({ permission: 'manage' })
  async changePolicy(
    @Ctx() ctx: CommandContext,
    @Body() body: PolicyDto,
    @IfMatch() expectedVersion: number | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<TenantPolicy & { version: number }> {
    const { reason, ...changes } = body;
    await this.commands.execute(new ChangePolicyCommand(ctx, changes, reason ?? null, expectedVersion));
    return this.policy(ctx, res);
  }

  private async withSecret(
    ctx: CommandContext,
    issued: IssuedKey,
    res: FastifyReply,
  ): Promise<KeyView & { secret: string }> {
    void res.header('Location', `/v1/keys/${issued.id}`);
    const view = await this.answer(ctx, issued.id, res);
    // The secret exists only in this answer: made by the command, never stored or logged.
    return { ...view, secret: issued.secret };
  }

  private async answer(ctx: CommandContext, keyId: string, res: FastifyReply): Promise<KeyView> {
    const row = await this.keys.get(tenantOf(ctx.caller), keyId);
    if (!row) throw new NotFound(`no key ${keyId}`);
    setVersion(res, row.version);
    return keyView(row, this.clock.now());
  }
}
