import { Module } from '@nestjs/common';
import { DB, type Db } from '@keyward/db';
import { ReplayReader } from '@keyward/replay';
import { ReplayController } from './replay.controller';

/** API.md "History and replay": an account's state as of a time, and who had a scope as of a time. */
@Module({
  controllers: [ReplayController],
  providers: [{ provide: ReplayReader, inject: [DB], useFactory: (db: Db) => new ReplayReader(db) }],
})
export class ReplayApiModule {}
