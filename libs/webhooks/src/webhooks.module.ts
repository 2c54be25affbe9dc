import { Module } from '@nestjs/common';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { DB, type Db } from '@keyward/db';
import { SecretBox } from './secret-box';
import { webhookHandlers } from './webhook.handlers';
import { WebhookReader } from './webhook.reader';

/** Webhook registration and the reader. Needs the platform module's CONFIG, CLOCK, DB and EventStore. */
@Module({
  providers: [
    { provide: WebhookReader, inject: [DB], useFactory: (db: Db) => new WebhookReader(db) },
    {
      provide: SecretBox,
      inject: [CONFIG],
      useFactory: (config: KeywardConfig) => new SecretBox(config.encryptionKey),
    },
    ...webhookHandlers,
  ],
  // SecretBox: one instance for every signing secret at rest (webhooks', secretDelivery's).
  exports: [WebhookReader, SecretBox],
})
export class WebhooksModule {}
