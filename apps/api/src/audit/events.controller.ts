import { Controller, Get, Inject, Query, Req, Res } from '@nestjs/common';
import { ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EventFeed, eventView, ndjsonLine, type FeedFilter } from '@keyward/audit';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { Access } from '../auth/access.decorator';
import { DEFAULT_PAGE_SIZE } from '../http/page.query';
import { Ctx } from '../http/request-context';
import { preferred } from '../http/negotiation';
import { startStream, writeStreamed } from '../http/streaming';
import { EventsQuery } from './audit.dto';

const NDJSON = 'application/x-ndjson';

/** Lines are gathered up to this many characters per write: one write per event costs more than the event. */
const WRITE_CHUNK = 64 * 1024;

/** API.md "History and replay": the tenant's events in commit order, a page at a time or all as NDJSON. */
@ApiTags('audit')
@Controller('v1/events')
export class EventsController {
  constructor(@Inject(EventFeed) private readonly feed: EventFeed) {}

  @Get()
  @Access({ permission: 'audit' })
  @ApiProduces('application/json', NDJSON)
  async events(
    @Ctx() ctx: CommandContext,
    @Query() query: EventsQuery,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const tenantId = tenantOf(ctx.caller);
    const filter: FeedFilter = { types: query.type?.split(','), correlationId: query.correlationId };
    const from = await this.feed.start(tenantId, {
      cursor: query.cursor,
      after: query.after === undefined ? undefined : BigInt(query.after),
    });
    if (preferred(req, ['application/json', NDJSON]) !== NDJSON) {
      const page = await this.feed.page(tenantId, from, filter, query.limit ?? DEFAULT_PAGE_SIZE);
      await reply.status(200).send({ items: page.items.map(eventView), nextCursor: page.nextCursor });
      return;
    }

    // The export is every matching event, not a page: `limit` does not apply.
    const events = this.feed.stream(tenantId, from, filter);
    // Read the first event before answering: a database that is down still gets a proper 503.
    let next = await events.next();
    const res = startStream(reply, {
      'Content-Type': `${NDJSON}; charset=utf-8`,
      'Cache-Control': 'no-store',
    });
    try {
      let chunk = '';
      for (; !next.done; next = await events.next()) {
        chunk += ndjsonLine(next.value);
        if (chunk.length >= WRITE_CHUNK) {
          await writeStreamed(res, chunk);
          chunk = '';
        }
      }
      res.end(chunk);
    } catch (error) {
      // Headers are gone: cut the body short, so the client sees a broken transfer, not a short export.
      await events.return(undefined);
      res.destroy(error as Error);
    }
  }
}
