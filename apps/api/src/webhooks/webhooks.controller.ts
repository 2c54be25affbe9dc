import { Body, Controller, Get, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { NotFound, type Page } from '@keyward/core';
import { RegisterWebhookCommand, WebhookReader, type RegisteredWebhook } from '@keyward/webhooks';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE, PageQuery } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { RegisterWebhookDto } from './webhook.dto';
import { deliveryView, webhookView, type DeliveryView, type WebhookView } from './webhook.view';

/** API.md "Operators, tenants, webhooks": registration, listing, deliveries. */
@ApiTags('webhooks')
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(WebhookReader) private readonly webhooks: WebhookReader,
  ) {}

  @Post()
  @Access({ permission: 'manage' })
  async register(
    @Ctx() ctx: CommandContext,
    @Body() body: RegisterWebhookDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<WebhookView & { signingSecret: string }> {
    const registered = await this.commands.execute<RegisterWebhookCommand, RegisteredWebhook>(
      new RegisterWebhookCommand(ctx, body.url, body.events),
    );
    void res.header('Location', `/v1/webhooks/${registered.id}`);
    const view = await this.answer(ctx, registered.id);
    // The secret is in this answer only: stored encrypted, never in an event, a log or a list.
    return { ...view, signingSecret: registered.signingSecret };
  }

  @Get()
  @Access({ permission: 'read' })
  async list(@Ctx() ctx: CommandContext, @Query() query: PageQuery): Promise<Page<WebhookView>> {
    const page = await this.webhooks.list(
      tenantOf(ctx.caller),
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
    return { items: page.items.map(webhookView), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @Access({ permission: 'read' })
  get(@Ctx() ctx: CommandContext, @Param('id') id: string): Promise<WebhookView> {
    return this.answer(ctx, id);
  }

  @Get(':id/deliveries')
  @Access({ permission: 'read' })
  async deliveries(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Query() query: PageQuery,
  ): Promise<Page<DeliveryView>> {
    const tenantId = tenantOf(ctx.caller);
    await this.answer(ctx, id);
    const page = await this.webhooks.deliveries(tenantId, id, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
    return { items: page.items.map(deliveryView), nextCursor: page.nextCursor };
  }

  private async answer(ctx: CommandContext, id: string): Promise<WebhookView> {
    const row = await this.webhooks.get(tenantOf(ctx.caller), id);
    if (!row) throw new NotFound(`no webhook ${id}`);
    return webhookView(row);
  }
}
