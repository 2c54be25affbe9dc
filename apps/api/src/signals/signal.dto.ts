import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { OPAQUE_ID } from '@keyward/core';
import {
  SIGNAL_SEVERITIES,
  SIGNAL_STATUSES,
  SIGNAL_TYPES,
  type SignalSeverity,
  type SignalStatus,
  type SignalType,
} from '@keyward/signals';
import { PageQuery } from '../http/page.query';
import { IsStorableText, OptionalNotNull } from '../http/validators';

/** A note is a sentence or a ticket link, not a report: long enough for that, small enough for events. */
export const NOTE_MAX_LENGTH = 1000;

export class SignalsQuery extends PageQuery {
  @ApiPropertyOptional({ enum: SIGNAL_STATUSES })
  @IsOptional()
  @IsIn(SIGNAL_STATUSES)
  status?: SignalStatus;

  @ApiPropertyOptional({ enum: SIGNAL_SEVERITIES })
  @IsOptional()
  @IsIn(SIGNAL_SEVERITIES)
  severity?: SignalSeverity;

  @ApiPropertyOptional({ example: 'sa_0123456789abcdefghij' })
  @IsOptional()
  @IsString()
  @Matches(OPAQUE_ID, { message: 'serviceAccountId must be a service account id' })
  serviceAccountId?: string;

  @ApiPropertyOptional({ enum: SIGNAL_TYPES })
  @IsOptional()
  @IsIn(SIGNAL_TYPES)
  type?: SignalType;
}

export class SignalNoteDto {
  @ApiPropertyOptional({ maxLength: NOTE_MAX_LENGTH, example: 'rotated the key; INC-4211' })
  @OptionalNotNull()
  @IsString()
  @MaxLength(NOTE_MAX_LENGTH)
  @IsStorableText()
  note?: string;
}
