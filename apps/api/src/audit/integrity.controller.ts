import { Controller, Get, Inject, Req } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { checkIntegrity, integrityView, type IntegrityView } from '@keyward/audit';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { ValidationFailed } from '@keyward/core';
import { DB, type Db } from '@keyward/db';
import { Access } from '../auth/access.decorator';
import { Ctx } from '../http/request-context';

/** API.md "History and replay": whether the tenant's stored events still form an intact hash chain. */
@ApiTags('audit')
@Controller('v1/audit')
export class IntegrityController {
  constructor(@Inject(DB) private readonly db: Db) {}

  @Get('integrity')
  @Access({ permission: 'audit' })
  async integrity(@Ctx() ctx: CommandContext, @Req() req: FastifyRequest): Promise<IntegrityView> {
    // It takes no query; a field sent anyway is refused as every DTO refuses an unknown one.
    const unknown = Object.keys(req.query as object);
    if (unknown.length > 0) {
      throw new ValidationFailed(
        'the request is not valid',
        unknown.map((field) => ({ field, message: `${field} is not a known field` })),
      );
    }
    return integrityView(await checkIntegrity(this.db, tenantOf(ctx.caller)));
  }
}
