import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBody, ApiTags } from '@nestjs/swagger';
import { plainToInstance } from 'class-transformer';
import { IsString, MaxLength, validateSync } from 'class-validator';
import type { CommandContext } from '@keyward/auth';
import { ValidationFailed } from '@keyward/core';
import { ReportExposuresCommand, type Exposure, type ExposureResult } from '@keyward/keys';
import { Access } from '../auth/access.decorator';
import { Ctx } from '../http/request-context';
import { fieldErrors } from '../http/validation';
import { OptionalNotNull } from '../http/validators';

/**
 * One finding: Keyward's shape `{ key, url, source }` or GitHub secret scanning's `{ token, type,
 * url, source }`. A field sent as null is refused like any other non-string: a null key would
 * otherwise reach the hash.
 */
export class ExposureDto {
  @OptionalNotNull()
  @IsString()
  @MaxLength(1024)
  key?: string;

  @OptionalNotNull()
  @IsString()
  @MaxLength(1024)
  token?: string;

  @OptionalNotNull()
  @IsString()
  @MaxLength(200)
  type?: string;

  @OptionalNotNull()
  @IsString()
  @MaxLength(2048)
  url?: string;

  @OptionalNotNull()
  @IsString()
  @MaxLength(200)
  source?: string;
}

export const MAX_EXPOSURES = 100;

/** The body as findings, or ValidationFailed naming the first bad field of each. */
export function exposuresOf(body: unknown): { exposures: Exposure[]; single: boolean } {
  const single = !Array.isArray(body);
  const items: unknown[] = single ? [body] : (body as unknown[]);
  if (items.length === 0 || items.length > MAX_EXPOSURES) {
    throw new ValidationFailed(`send one finding or an array of 1 to ${MAX_EXPOSURES}`, [
      { field: '(body)', message: `1 to ${MAX_EXPOSURES} findings` },
    ]);
  }
  const errors = items.flatMap((item, i) => {
    const at = single ? '' : `[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      return [{ field: at || '(body)', message: 'must be an object' }];
    }
    const dto = plainToInstance(ExposureDto, item);
    const found = fieldErrors(validateSync(dto, { whitelist: true, forbidNonWhitelisted: true })).map(
      (e) => ({
        field: at ? `${at}.${e.field}` : e.field,
        message: e.message,
      }),
    );
    if ((dto.key === undefined) === (dto.token === undefined)) {
      found.push({ field: at ? `${at}.key` : 'key', message: 'send exactly one of key or token' });
    }
    return found;
  });
  if (errors.length) throw new ValidationFailed('the findings are not valid', errors);
  return {
    single,
    exposures: items.map((item) => {
      const dto = item as ExposureDto;
      return { key: (dto.key ?? dto.token)!, url: dto.url ?? null, source: dto.source ?? null };
    }),
  };
}

/** API.md: someone found a key where it should not be. */
@ApiTags('keys')
@Controller('v1/exposures')
export class ExposuresController {
  constructor(@Inject(CommandBus) private readonly commands: CommandBus) {}

  @Post()
  @HttpCode(200)
  @Access({ permission: 'manage' })
  @ApiBody({
    description: '{ key, url, source }, or an array of up to 100 (GitHub secret-scanning shape accepted)',
  })
  async report(
    @Ctx() ctx: CommandContext,
    @Body() body: unknown,
  ): Promise<ExposureResult | ExposureResult[]> {
    const { exposures, single } = exposuresOf(body);
    const results = await this.commands.execute<ReportExposuresCommand, ExposureResult[]>(
      new ReportExposuresCommand(ctx, exposures),
    );
    return single ? results[0] : results;
  }
}
