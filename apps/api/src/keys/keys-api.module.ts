import { Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { PinoLogger } from 'nestjs-pino';
import { AccountsModule } from '@keyward/accounts';
import { AuthFailureThrottle } from '@keyward/auth';
import { TenantsModule } from '@keyward/tenants';
import { CLOCK, type Clock } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { DB, storeReachable, type Db } from '@keyward/db';
import { EventStore } from '@keyward/event-store';
import { KeyCache, KeyInvalidations, KeyReader, KeysModule, RateLimiter, Verifier } from '@keyward/keys';
import { REDIS } from '@keyward/redis';
import { UsageBuffer } from '@keyward/usage';
import { Authenticator } from '../auth/authenticator';
import { OperatorCache } from '../auth/operator-cache';
import { UsageApiModule } from '../usage/usage-api.module';
import { ExposuresController } from './exposures.controller';
import { KeysController } from './keys.controller';
import { VerifyController } from './verify.controller';
import { ReportsController } from './reports.controller';

/** Upper bound on cached key records per instance (a record is well under a kilobyte). */
const KEY_CACHE_ENTRIES = 50_000;
/** Operators are people and gateways: a few per tenant. */
const OPERATOR_CACHE_ENTRIES = 10_000;

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

/**
 * The HTTP side of keys, verify and tenant policy; the Verifier and the operator cache are shared
 * with the auth guard.
 */
@Module({
  imports: [KeysModule, AccountsModule, TenantsModule, UsageApiModule],
  controllers: [VerifyController, KeysController, ExposuresController, ReportsController],
  providers: [
    {
      provide: KeyCache,
      inject: [CONFIG, CLOCK, DB],
      useFactory: (config: KeywardConfig, clock: Clock, db: Db) =>
        new KeyCache(clock, {
          ttlMs: config.keyCacheTtlMs,
          maxEntries: KEY_CACHE_ENTRIES,
          trusted: () => storeReachable(db),
        }),
    },
    {
      provide: OperatorCache,
      inject: [CONFIG, CLOCK, DB],
      useFactory: (config: KeywardConfig, clock: Clock, db: Db) =>
        new OperatorCache(clock, {
          ttlMs: config.keyCacheTtlMs,
          maxEntries: OPERATOR_CACHE_ENTRIES,
          trusted: () => storeReachable(db),
        }),
    },
    {
      provide: KeyInvalidations,
      inject: [REDIS, KeyCache, OperatorCache, CONFIG, PinoLogger],
      useFactory: (
        redis: Redis,
        keys: KeyCache,
        operators: OperatorCache,
        config: KeywardConfig,
        logger: PinoLogger,
      ) => {
        logger.setContext('KeyInvalidations');
        return new KeyInvalidations(redis, [keys, operators], {
          redisUrl: config.redisUrl,
          redisPrefix: config.redisPrefix,
          onError: (error, message) => logger.warn({ err: error }, message),
        });
      },
    },
    KeyCacheLifecycle,
    {
      provide: AuthFailureThrottle,
      inject: [REDIS, CONFIG],
      useFactory: (redis: Redis, config: KeywardConfig) =>
        new AuthFailureThrottle(redis, config.redisPrefix, {
          limit: config.authFailureLimit,
          windowMs: config.authFailureWindowMs,
        }),
    },
    Authenticator,
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
  exports: [Verifier, Authenticator],
})
export class KeysApiModule {}
