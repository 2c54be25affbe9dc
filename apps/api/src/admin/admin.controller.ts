import { Controller, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Queue } from 'bullmq';
import { actorOf, type CommandContext } from '@keyward/auth';
import { JOB, type RebuildProjectionJob } from '@keyward/jobs';
import { findProjection } from '@keyward/projections';
import { Access } from '../auth/access.decorator';
import { Ctx } from '../http/request-context';

export const PROJECTIONS_QUEUE = Symbol('PROJECTIONS_QUEUE');

/** API.md "Operations": rebuilds run in the worker, not in a request. */
@ApiTags('operations')
@Controller('v1/admin')
export class AdminController {
  constructor(@Inject(PROJECTIONS_QUEUE) private readonly queue: Queue<RebuildProjectionJob>) {}

  @Post('projections/:name/rebuild')
  @HttpCode(202)
  @Access({ permission: 'manage' })
  async rebuild(
    @Ctx() ctx: CommandContext,
    @Param('name') name: string,
  ): Promise<{ jobId: string; projection: string }> {
    const projection = findProjection(name).name;
    const job = await this.queue.add(JOB.rebuildProjection, {
      projection,
      requestedBy: actorOf(ctx.caller),
      correlationId: ctx.correlationId,
    });
    return { jobId: job.id!, projection };
  }
}
