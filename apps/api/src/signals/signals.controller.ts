import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { NotFound, type Page } from '@keyward/core';
import { AcknowledgeSignalCommand, ResolveSignalCommand, SignalReader } from '@keyward/signals';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { setVersion } from '../http/versioning';
import { SignalNoteDto, SignalsQuery } from './signal.dto';
import { signalView, type SignalView } from './signal.view';

/** API.md "Usage, signals, reports": the signals feed, acknowledge and resolve. */
@ApiTags('signals')
@Controller('v1/signals')
export class SignalsController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(SignalReader) private readonly signals: SignalReader,
  ) {}

  @Get()
  @Access({ permission: 'read' })
  async list(@Ctx() ctx: CommandContext, @Query() query: SignalsQuery): Promise<Page<SignalView>> {
    const { limit, cursor, ...filter } = query;
    const page = await this.signals.list(tenantOf(ctx.caller), filter, limit ?? DEFAULT_PAGE_SIZE, cursor);
    return { items: page.items.map(signalView), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @Access({ permission: 'read' })
  get(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<SignalView> {
    return this.answer(ctx, id, res);
  }

  @Post(':id/acknowledge')
  @HttpCode(200)
  @Access({ permission: 'manage' })
  async acknowledge(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: SignalNoteDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<SignalView> {
    await this.commands.execute(new AcknowledgeSignalCommand(ctx, id, body.note ?? null));
    return this.answer(ctx, id, res);
  }

  @Post(':id/resolve')
  @HttpCode(200)
  @Access({ permission: 'manage' })
  async resolve(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Body() body: SignalNoteDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<SignalView> {
    await this.commands.execute(new ResolveSignalCommand(ctx, id, body.note ?? null));
    return this.answer(ctx, id, res);
  }

  private async answer(ctx: CommandContext, id: string, res: FastifyReply): Promise<SignalView> {
    const signal = await this.signals.get(tenantOf(ctx.caller), id);
    if (!signal) throw new NotFound(`no signal ${id}`);
    setVersion(res, signal.version);
    return signalView(signal);
  }
}
