import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ServiceAccountReader } from '@keyward/accounts';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { CLOCK, NotFound, type Clock } from '@keyward/core';
import { KeyReader } from '@keyward/keys';
import { UsageReader, usageWindow, type UsageBucket } from '@keyward/usage';
import { Access } from '../auth/access.decorator';
import { Ctx } from '../http/request-context';
import { UsageQueryDto } from './usage.dto';

/** API.md "Usage": verifications per minute, hour or day, by account or key, denials by code. */
@ApiTags('usage')
@Controller('v1/usage')
export class UsageController {
  constructor(
    private readonly usage: UsageReader,
    private readonly accounts: ServiceAccountReader,
    private readonly keys: KeyReader,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get()
  @Access({ permission: 'read' })
  async buckets(
    @Ctx() ctx: CommandContext,
    @Query() query: UsageQueryDto,
  ): Promise<{ items: UsageBucket[] }> {
    const tenantId = tenantOf(ctx.caller);
    const { serviceAccountId, keyId } = query;
    // An id that is not this tenant's is named as not found, rather than answered with zeros.
    if (serviceAccountId !== undefined && !(await this.accounts.get(tenantId, serviceAccountId))) {
      throw new NotFound(`no service account ${serviceAccountId}`);
    }
    if (keyId !== undefined) {
      const key = await this.keys.get(tenantId, keyId);
      if (!key || (serviceAccountId !== undefined && key.service_account_id !== serviceAccountId)) {
        throw new NotFound(
          serviceAccountId ? `no key ${keyId} on service account ${serviceAccountId}` : `no key ${keyId}`,
        );
      }
    }
    const granularity = query.granularity ?? 'hour';
    const { from, to } = usageWindow(
      this.clock.now(),
      granularity,
      query.from ? new Date(query.from) : undefined,
      query.to ? new Date(query.to) : undefined,
    );
    const items = await this.usage.buckets({ tenantId, serviceAccountId, keyId, from, to, granularity });
    return { items };
  }
}
