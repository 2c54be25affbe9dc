import { Module } from '@nestjs/common';
import { EventFeed, HistoryReader } from '@keyward/audit';
import { DB, type Db } from '@keyward/db';
import { EventsController } from './events.controller';
import { HistoryController } from './history.controller';
import { IntegrityController } from './integrity.controller';

/** API.md "History and replay": stream histories, the tenant's event feed and export, integrity. */
@Module({
  controllers: [HistoryController, EventsController, IntegrityController],
  providers: [
    { provide: HistoryReader, inject: [DB], useFactory: (db: Db) => new HistoryReader(db) },
    { provide: EventFeed, inject: [DB], useFactory: (db: Db) => new EventFeed(db) },
  ],
})
export class AuditApiModule {}
