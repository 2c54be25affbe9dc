import { Controller, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Queue } from 'bullmq';
import { actorOf, tenantOf, type CommandContext } from '@keyward/auth';
import { Conflict } from '@keyward/core';
import { queueRebuild, type RebuildProjectionJob } from '@keyward/jobs';
import { findProjection } from '@keyward/projections';
import { Access } from '../auth/access.decorator';
import { IfMatch } from '../http/if-match';
import { Ctx } from '../http/request-context';

export const PROJECTIONS_QUEUE = Symbol('PROJECTIONS_QUEUE');

/** API.md "Operations": rebuilds run in the worker, not in a request. */
@ApiTags('operations')
@Controller('v1/admin')
export class AdminController {
  constructor(@Inject(PROJECTIONS_QUEUE) private readonly queue: Queue<RebuildProjectionJob>) {}

  /**
   * An admin rebuilds its own tenant's rows; the bootstrap token, which is in no tenant, every
   * tenant's. 409 while the same rebuild is queued or running.
   */
  @Post('projections/:name/rebuild')
  @HttpCode(202)
  @Access({ permission: 'manage', bootstrap: true })
  async rebuild(
    @Ctx() ctx: CommandContext,
    @Param('name') name: string,
    @IfMatch() expectedVersion: number | undefined,
  ): Promise<{ jobId: string; projection: string }> {
    const projection = findProjection(name).name;
    // A read model has no version, so no version a caller names can be its current one; `*`
    // (or no If-Match) asks only that the projection exists.
    if (expectedVersion !== undefined) {
      throw new Conflict(`projection ${projection} has no version; If-Match may only be *`);
    }
    const jobId = await queueRebuild(this.queue, {
      projection,
      tenantId: ctx.caller.kind === 'bootstrap' ? null : tenantOf(ctx.caller),
      requestedBy: actorOf(ctx.caller),
      correlationId: ctx.correlationId,
    });
    return { jobId, projection };
  }
}
