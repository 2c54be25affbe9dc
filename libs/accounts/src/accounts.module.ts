import { Module } from '@nestjs/common';
import { EventStore } from '@keyward/event-store';
import { CLOCK, type Clock } from '@keyward/core';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { DB, type Db } from '@keyward/db';
import { KeyReader, KeysModule } from '@keyward/keys';
import { SecretBox, WebhooksModule } from '@keyward/webhooks';
import { AccountKeys } from './account-keys';
import { SecretDeliverySecrets } from './secret-delivery';
import { serviceAccountHandlers } from './service-account.handlers';
import { ServiceAccountReader } from './service-account.reader';
import { ServiceAccountRepository } from './service-account.repository';

/** Service accounts: command handlers and the read-model reader. Needs the platform module's CONFIG, CLOCK, DB and EventStore. */
@Module({
  // WebhooksModule for its SecretBox: secretDelivery signing secrets are kept like webhooks'.
  imports: [KeysModule, WebhooksModule],
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
    {
      provide: SecretDeliverySecrets,
      inject: [SecretBox, CLOCK, CONFIG],
      useFactory: (box: SecretBox, clock: Clock, config: KeywardConfig) =>
        new SecretDeliverySecrets(box, clock, { allowPrivate: config.webhookAllowPrivate }),
    },
    ...serviceAccountHandlers,
  ],
  exports: [ServiceAccountReader, ServiceAccountRepository],
})
export class AccountsModule {}
