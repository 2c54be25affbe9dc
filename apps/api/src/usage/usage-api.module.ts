import { Inject, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { PinoLogger } from 'nestjs-pino';
import { AccountsModule } from '@keyward/accounts';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { DB, type Db } from '@keyward/db';
import { KeysModule } from '@keyward/keys';
import { DEAD_CONNECTION_MS, closeRedis, createRedis } from '@keyward/redis';
import { UsageBuffer, UsageCounters, UsageReader } from '@keyward/usage';
import { UsageController } from './usage.controller';

/** The buffer's own Redis connection: it must outlive the shared client at shutdown. */
const USAGE_REDIS = Symbol('USAGE_REDIS');

/** Cells one instance holds while Redis is away before it stops counting (and says so). */
const MAX_BUFFERED_CELLS = 100_000;

/**
 * Usage counting on the verify path and GET /v1/usage. The buffer hands counts to Redis every
 * second and once more at shutdown, after the HTTP server has stopped taking requests.
 */
@Module({
  imports: [KeysModule, AccountsModule],
  controllers: [UsageController],
  providers: [
    {
      provide: USAGE_REDIS,
      inject: [CONFIG],
      // A hung connection is dropped and made again, so hand-offs resume when Redis answers.
      useFactory: (config: KeywardConfig) =>
        createRedis(config.redisUrl, { socketTimeout: DEAD_CONNECTION_MS }),
    },
    {
      provide: UsageBuffer,
      inject: [USAGE_REDIS, CONFIG, PinoLogger],
      useFactory: (redis: Redis, config: KeywardConfig, logger: PinoLogger) => {
        logger.setContext('UsageBuffer');
        return new UsageBuffer(new UsageCounters(redis, config.redisPrefix), {
          intervalMs: 1_000,
          maxCells: MAX_BUFFERED_CELLS,
          onError: (error, message, detail) => logger.warn({ err: error, ...detail }, message),
        });
      },
    },
    { provide: UsageReader, inject: [DB], useFactory: (db: Db) => new UsageReader(db) },
  ],
  exports: [UsageBuffer],
})
export class UsageApiModule implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly buffer: UsageBuffer,
    @Inject(USAGE_REDIS) private readonly redis: Redis,
  ) {}

  onModuleInit(): void {
    this.buffer.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.buffer.stop();
    await closeRedis(this.redis);
  }
}
