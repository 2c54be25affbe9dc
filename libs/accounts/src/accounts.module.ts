import { Module } from '@nestjs/common';
import { EventStore } from '@keyward/event-store';
import { DB, type Db } from '@keyward/db';
import { serviceAccountHandlers } from './service-account.handlers';
import { ServiceAccountReader } from './service-account.reader';
import { ServiceAccountRepository } from './service-account.repository';

/** Service accounts: command handlers and the read-model reader. Needs the platform module's DB and EventStore. */
@Module({
  providers: [
    {
      provide: ServiceAccountRepository,
      inject: [EventStore],
      useFactory: (store: EventStore) => new ServiceAccountRepository(store),
    },
    { provide: ServiceAccountReader, inject: [DB], useFactory: (db: Db) => new ServiceAccountReader(db) },
    ...serviceAccountHandlers,
  ],
  exports: [ServiceAccountReader, ServiceAccountRepository],
})
export class AccountsModule {}
