import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches } from 'class-validator';
import { PageQuery } from '../http/page.query';

export class HistoryQuery extends PageQuery {}

/** Event types are past-tense facts (KeyIssued); up to 20 of them, comma-separated. */
const EVENT_TYPES = /^[A-Za-z][A-Za-z0-9._-]{0,99}(?:,[A-Za-z][A-Za-z0-9._-]{0,99}){0,19}$/;

/** The form of correlation id the API keeps from X-Correlation-Id (http/request-context.ts). */
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export class EventsQuery extends PageQuery {
  @ApiPropertyOptional({
    example: '1200',
    description:
      'continue strictly after the event at this position, in commit order; 0 or absent: from the start. ' +
      '`cursor`, when also given, wins.',
  })
  @IsOptional()
  @IsString()
  // 18 digits stay inside PostgreSQL's bigint, so no value of this form can fail in SQL.
  @Matches(/^\d{1,18}$/, { message: 'after must be an event position: a whole number of up to 18 digits' })
  after?: string;

  @ApiPropertyOptional({
    example: 'KeyIssued,KeyRevoked',
    description: 'only events of this type, or of any of up to 20 comma-separated types',
  })
  @IsOptional()
  @IsString()
  @Matches(EVENT_TYPES, {
    message: 'type must be an event type such as KeyIssued, or up to 20 joined by commas',
  })
  type?: string;

  @ApiPropertyOptional({ example: '6f1c2d3e-0a4b-4c5d-8e9f-0a1b2c3d4e5f' })
  @IsOptional()
  @IsString()
  @Matches(CORRELATION_ID, { message: 'correlationId must be 1..128 characters of [A-Za-z0-9._:-]' })
  correlationId?: string;
}
