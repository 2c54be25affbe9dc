import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, MaxLength, ValidateBy } from 'class-validator';
import { SCOPE } from '@keyward/accounts';

/**
 * A calendar date (midnight UTC) or a date and time with its zone. A time without a zone would be
 * read in the server's own zone, so it is refused rather than guessed.
 */
const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2})))?$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True for an instant of INSTANT's form that names a real day and time (no 30 February, no 24:00). */
export function isInstant(value: unknown): value is string {
  const match = typeof value === 'string' ? INSTANT.exec(value) : null;
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = match
    .slice(1)
    .map((part) => Number(part ?? 0));
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  return (
    days !== undefined &&
    day >= 1 &&
    day <= days &&
    hour < 24 &&
    minute < 60 &&
    second < 60 &&
    offsetHours < 24 &&
    offsetMinutes < 60 &&
    Number.isFinite(Date.parse(match[0]))
  );
}

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

export class AccessQuery {
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
