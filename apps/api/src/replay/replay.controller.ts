import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { CLOCK, NotFound, ValidationFailed, decodeCursor, encodeCursor, type Clock } from '@keyward/core';
import { ReplayReader, resolveAsOf } from '@keyward/replay';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { AccessQuery, StateQuery } from './replay.dto';
import { accessView, accountStateView } from './replay.mapping';
import { AccessView, AccountStateView } from './replay.view';

/**
 * API.md "History and replay": what an account was, and who could use a scope, at a past time,
 * rebuilt from events alone. Both are audit reads (`keyward:audit`), like history.
 */
@ApiTags('history and replay')
@Controller('v1')
export class ReplayController {
  constructor(
    @Inject(ReplayReader) private readonly replay: ReplayReader,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get('service-accounts/:id/state')
  @Access({ permission: 'audit' })
  @ApiOperation({
    summary: 'The account with its keys as they stood at a time, rebuilt from events alone',
    description:
      'Fields as GET /v1/service-accounts/{id} and GET /v1/keys/{keyId} answer them, without the ' +
      'first and last use (usage, which no event records); plus `keys` and `asOf`. ' +
      '404 for a time before the account was created.',
  })
  @ApiOkResponse({ type: AccountStateView })
  async state(
    @Ctx() ctx: CommandContext,
    @Param('id') id: string,
    @Query() query: StateQuery,
  ): Promise<AccountStateView> {
    const asOf = this.asOf(query.asOf);
    const state = await this.replay.accountAsOf(tenantOf(ctx.caller), id, asOf);
    if (!state) throw new NotFound(`no service account ${id} at ${asOf.toISOString()}`);
    return accountStateView(state);
  }

  @Get('access')
  @Access({ permission: 'audit' })
  @ApiOperation({
    summary: 'Every account and key that could have used a scope at a time',
    description:
      'A key counts when, at asOf, it was live (not revoked, not expired, within its grace if ' +
      "rotated), its account was active, and both the key's scopes and the account's ceiling " +
      'covered the scope (wildcards as verify reads them). Each item names the events that granted it.',
  })
  @ApiOkResponse({ type: AccessView })
  async access(@Ctx() ctx: CommandContext, @Query() query: AccessQuery): Promise<AccessView> {
    // A cursor carries the first page's time, so the pages of one listing answer for one instant
    // even when that instant was "now".
    const cursor = query.cursor === undefined ? null : decodeCursor(query.cursor);
    const asOf = cursor ? new Date(cursor.createdAt) : this.asOf(query.asOf);
    const items = await this.replay.accessAsOf(tenantOf(ctx.caller), query.scope, asOf);
    let start = 0;
    if (cursor) {
      start = items.findIndex((item) => item.key.id === cursor.id) + 1;
      if (start === 0) {
        throw new ValidationFailed('the cursor is not valid', [
          { field: 'cursor', message: 'is not a cursor this listing returned' },
        ]);
      }
    }
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const page = items.slice(start, start + limit);
    const last = page.at(-1);
    const nextCursor =
      start + limit < items.length && last
        ? encodeCursor({ createdAt: asOf.toISOString(), id: last.key.id })
        : null;
    return accessView(query.scope, asOf, page, nextCursor);
  }

  private asOf(requested: string | undefined): Date {
    return resolveAsOf(requested === undefined ? undefined : new Date(requested), this.clock.now());
  }
}
