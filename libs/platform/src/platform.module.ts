import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import { CLOCK, systemClock, type Clock } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { DB, createDb, type Db } from '@keyward/db';
import { EventStore } from '@keyward/event-store';
import { inlineProjections } from '@keyward/projections';
import { REDIS, closeRedis, createHotPathRedis } from '@keyward/redis';

export interface PlatformOptions {
  config: KeywardConfig;
  /** Tests pass a ManualClock. */
  clock?: Clock;
  /** Shows in pg_stat_activity: keyward-api, keyward-worker, keyward-cli. */
  applicationName: string;
  dbPoolSize?: number;
}

/**
 * What every Keyward process shares: its config, clock, the PostgreSQL pool, the Redis client
 * and the event store with every inline projection. Closes its connections on shutdown.
 */
@Global()
@Module({})
export class PlatformModule implements OnApplicationShutdown {
  constructor(
    @Inject(DB) private readonly db: Db,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  static forRoot(options: PlatformOptions): DynamicModule {
    const { config } = options;
    return {
      module: PlatformModule,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: CLOCK, useValue: options.clock ?? systemClock },
        {
          provide: DB,
          useFactory: () =>
            createDb(config.databaseUrl, {
              applicationName: options.applicationName,
              max: options.dbPoolSize,
            }),
        },
        // On the request path: every command bounded by tens of milliseconds (see createHotPathRedis).
        { provide: REDIS, useFactory: () => createHotPathRedis(config.redisUrl) },
        {
          provide: EventStore,
          inject: [DB, CLOCK],
          useFactory: (db: Db, clock: Clock) => new EventStore(db, inlineProjections, clock),
        },
      ],
      exports: [CONFIG, CLOCK, DB, REDIS, EventStore],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.db.destroy();
    await closeRedis(this.redis);
  }
}
