import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { eventView, HistoryReader, type EventView } from '@keyward/audit';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { NotFound, type Page } from '@keyward/core';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { HistoryQuery } from './audit.dto';

/** API.md "History and replay": an account's or a key's events, oldest first. */
@ApiTags('history')
@Controller('v1')
export class HistoryController {
  constructor(@Inject(HistoryReader) private readonly history: HistoryReader) {}

  @Get('service-accounts/:id/history')
  @Access({ permission: 'audit' })
  async accountHistory(
    @Ctx() ctx: CommandContext,
    @Param('id') accountId: string,
    @Query() query: HistoryQuery,
  ): Promise<Page<EventView>> {
    const page = await this.history.accountHistory(
      tenantOf(ctx.caller),
      accountId,
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
    if (!page) throw new NotFound(`no service account ${accountId}`);
    return { items: page.items.map(eventView), nextCursor: page.nextCursor };
  }

  @Get('keys/:keyId/history')
  @Access({ permission: 'audit' })
  async keyHistory(
    @Ctx() ctx: CommandContext,
    @Param('keyId') keyId: string,
    @Query() query: HistoryQuery,
  ): Promise<Page<EventView>> {
    const page = await this.history.keyHistory(
      tenantOf(ctx.caller),
      keyId,
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
    if (!page) throw new NotFound(`no key ${keyId}`);
    return { items: page.items.map(eventView), nextCursor: page.nextCursor };
  }
}
