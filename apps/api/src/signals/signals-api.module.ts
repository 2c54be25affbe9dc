import { Module } from '@nestjs/common';
import { SignalsModule } from '@keyward/signals';
import { SignalsController } from './signals.controller';

/** API.md "Usage, signals, reports": the signals feed, acknowledge and resolve. */
@Module({
  imports: [SignalsModule],
  controllers: [SignalsController],
})
export class SignalsApiModule {}
