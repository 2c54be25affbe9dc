import { Module } from '@nestjs/common';
import type Redis from 'ioredis';
import { AccountsModule } from '@keyward/accounts';
import { CLOCK, type Clock } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { KeyReader, KeysModule, RateLimiter, Verifier } from '@keyward/keys';
import { REDIS } from '@keyward/redis';
import { ExposuresController } from './exposures.controller';
import { KeysController } from './keys.controller';
import { ReportsController } from './reports.controller';

/** The HTTP side of keys, verify and tenant policy; the Verifier is shared with the auth guard. */
@Module({
  imports: [KeysModule, AccountsModule],
  controllers: [KeysController, ExposuresController, ReportsController],
  providers: [
    {
      provide: Verifier,
      inject: [KeyReader, REDIS, CONFIG, CLOCK],
      useFactory: (reader: KeyReader, redis: Redis, config: KeywardConfig, clock: Clock) =>
        new Verifier(reader, new RateLimiter(redis, config.redisPrefix), clock),
    },
  ],
  exports: [Verifier],
})
export class KeysApiModule {}
