import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { CLOCK, type Clock } from '@keyward/core';
import { DB, type Db } from '@keyward/db';
import { CSV_HEADER, credentialReport, csvLine } from '@keyward/keys';
import { Access } from '../auth/access.decorator';
import { Ctx } from '../http/request-context';
import { preferred } from '../http/negotiation';
import { startStream, writeStreamed } from '../http/streaming';

/** API.md "Reports": one row per live key, as JSON or CSV, streamed as the rows come. */
@ApiTags('reports')
@Controller('v1/reports')
export class ReportsController {
  constructor(
    @Inject(DB) private readonly db: Db,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get('credentials')
  @Access({ permission: 'read' })
  @ApiProduces('application/json', 'text/csv')
  async credentials(
    @Ctx() ctx: CommandContext,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const csv = preferred(req, ['application/json', 'text/csv']) === 'text/csv';
    const rows = credentialReport(this.db, tenantOf(ctx.caller), this.clock.now());
    // Read the first row before answering: a database that is down still gets a proper 503.
    let next = await rows.next();
    const res = startStream(reply, {
      'Content-Type': csv ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      ...(csv ? { 'Content-Disposition': 'attachment; filename="credentials.csv"' } : {}),
    });
    const write = (chunk: string) => writeStreamed(res, chunk);
    try {
      await write(csv ? CSV_HEADER : '{"items":[');
      for (let first = true; !next.done; first = false, next = await rows.next()) {
        await write(csv ? csvLine(next.value) : `${first ? '' : ','}${JSON.stringify(next.value)}`);
      }
      res.end(csv ? '' : ']}');
    } catch (error) {
      // Headers are gone: cut the body short, so the client sees a broken transfer, not a short report.
      await rows.return(undefined);
      res.destroy(error as Error);
    }
  }
}
