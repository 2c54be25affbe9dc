import { Module } from '@nestjs/common';
import { EventStore } from '@keyward/event-store';
import { CLOCK, type Clock } from '@keyward/core';
import { DB, type Db } from '@keyward/db';
import { KeyReader, KeysModule } from '@keyward/keys';
import { AccountKeys } from './account-keys';
import { serviceAccountHandlers } from './service-account.handlers';
import { ServiceAccountReader } from './service-account.reader';
import { ServiceAccountRepository } from './service-account.repository';

/** Service accounts: command handlers and the read-model reader. Needs the platform module's DB and EventStore. */
@Module({
  imports: [KeysModule],
  providers: [
    {
      provide: AccountKeys,
      inject: [KeyReader, CLOCK],
      useFactory: (reader: KeyReader, clock: Clock) => new AccountKeys(reader, clock),
    },
    {
      provide: ServiceAccountRepository,
      inject: [EventStore],
      useFactory: (store: EventStore) => new ServiceAccountRepository(store),
    },
    {
      provide: ServiceAccountReader,
      inject: [DB, CLOCK],
      useFactory: (db: Db, clock: Clock) => new ServiceAccountReader(db, clock),
    },
    ...serviceAccountHandlers,
  ],
  exports: [ServiceAccountReader, ServiceAccountRepository],
})
export class AccountsModule {}
