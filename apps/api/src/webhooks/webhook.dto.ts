import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, MaxLength } from 'class-validator';
import { WEBHOOK_EVENTS } from '@keyward/webhooks';
import { IsStorableText } from '../http/validators';

export class RegisterWebhookDto {
  @ApiProperty({ example: 'https://hooks.example.com/keyward', maxLength: 2048 })
  @IsString()
  @MaxLength(2048)
  @IsStorableText()
  url!: string;

  // Names are checked by the domain (checkEventNames), which says why a known-but-unavailable
  // name is refused; here only the form and the count.
  @ApiProperty({ type: [String], enum: WEBHOOK_EVENTS, example: ['key.revoked'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENTS.length + 8)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  events!: string[];
}
