import { Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { PinoLogger } from 'nestjs-pino';
import { AccountsModule } from '@keyward/accounts';
import { CLOCK, type Clock } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { EventStore } from '@keyward/event-store';
import { KeyCache, KeyInvalidations, KeyReader, KeysModule, RateLimiter, Verifier } from '@keyward/keys';
import { REDIS } from '@keyward/redis';
import { UsageBuffer } from '@keyward/usage';
import { UsageApiModule } from '../usage/usage-api.module';
import { ExposuresController } from './exposures.controller';
import { KeysController } from './keys.controller';
import { ReportsController } from './reports.controller';

/** Upper bound on cached key records per instance (a record is well under a kilobyte). */
const KEY_CACHE_ENTRIES = 50_000;

/**
 * Subscribes the key cache to invalidations before the first request, sends one after every
 * commit, and lets go of the subscriber connection on shutdown.
 */
@Injectable()
export class KeyCacheLifecycle implements OnModuleInit, OnApplicationShutdown {
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly invalidations: KeyInvalidations,
    private readonly events: EventStore,
  ) {}

  async onModuleInit(): Promise<void> {
    this.unsubscribe = this.events.onCommitted((events) => this.invalidations.committed(events));
    await this.invalidations.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe?.();
    await this.invalidations.close();
  }
}

/** The HTTP side of keys, verify and tenant policy; the Verifier is shared with the auth guard. */
@Module({
  imports: [KeysModule, AccountsModule, UsageApiModule],
  controllers: [KeysController, ExposuresController, ReportsController],
  providers: [
    {
      provide: KeyCache,
      inject: [CONFIG, CLOCK],
      useFactory: (config: KeywardConfig, clock: Clock) =>
        new KeyCache(clock, { ttlMs: config.keyCacheTtlMs, maxEntries: KEY_CACHE_ENTRIES }),
    },
    {
      provide: KeyInvalidations,
      inject: [REDIS, KeyCache, CONFIG, PinoLogger],
      useFactory: (redis: Redis, cache: KeyCache, config: KeywardConfig, logger: PinoLogger) => {
        logger.setContext('KeyInvalidations');
        return new KeyInvalidations(redis, cache, {
          redisUrl: config.redisUrl,
          redisPrefix: config.redisPrefix,
          onError: (error, message) => logger.warn({ err: error }, message),
        });
      },
    },
    KeyCacheLifecycle,
    {
      provide: Verifier,
      inject: [KeyReader, KeyCache, REDIS, UsageBuffer, CONFIG, CLOCK],
      useFactory: (
        reader: KeyReader,
        cache: KeyCache,
        redis: Redis,
        usage: UsageBuffer,
        config: KeywardConfig,
        clock: Clock,
      ) => new Verifier(reader, cache, new RateLimiter(redis, config.redisPrefix), usage, clock),
    },
  ],
  exports: [Verifier],
})
export class KeysApiModule {}
