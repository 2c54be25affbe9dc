import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, MaxLength, ValidateBy } from 'class-validator';
import { SCOPE } from '@keyward/accounts';
import { isInstant } from '@keyward/replay';
import { PageQuery } from '../http/page.query';

function IsInstant(): PropertyDecorator {
  return ValidateBy({
    name: 'isInstant',
    validator: {
      validate: isInstant,
      defaultMessage: () =>
        '$property must be an ISO-8601 time with its zone, such as 2026-03-01T09:00:00.000Z, or a date',
    },
  });
}

const AS_OF = {
  example: '2026-03-01T09:00:00.000Z',
  description:
    'the time to answer for (inclusive: an event at exactly this time counts); default now. ' +
    'A time after now is answered as now, and the answer says so in `asOf`.',
};

export class StateQuery {
  @ApiPropertyOptional(AS_OF)
  @IsOptional()
  @IsInstant()
  asOf?: string;
}

export class AccessQuery extends PageQuery {
  @ApiProperty({
    example: 'tickets:read',
    description:
      'the scope as a key would present it to verify; a key holding `tickets:*` covers `tickets:read`. ' +
      'Asking for `tickets:*` finds the keys that hold `tickets:*` itself.',
  })
  @IsString()
  @MaxLength(129)
  @Matches(SCOPE, { message: 'scope must be product:action or product:* of [a-z0-9._-]' })
  scope!: string;

  @ApiPropertyOptional(AS_OF)
  @IsOptional()
  @IsInstant()
  asOf?: string;
}
