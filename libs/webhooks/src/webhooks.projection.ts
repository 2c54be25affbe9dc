import type { Transaction } from 'kysely';
import type { Database } from '@keyward/db';
import type { InlineProjection, PendingEvent } from '@keyward/event-store';
import { WEBHOOK_STREAM, type WebhookRegisteredV1 } from './webhook.events';

/** The `webhooks` read model. Secrets are not in events, so not here: see webhook_secrets. */
export const webhooksProjection: InlineProjection = {
  name: 'webhooks',
  tables: ['webhooks'],
  async apply(trx: Transaction<Database>, events: readonly PendingEvent[]): Promise<void> {
    for (const event of events) {
      if (event.streamType !== WEBHOOK_STREAM || event.type !== 'WebhookRegistered') continue;
      const data = event.data as WebhookRegisteredV1;
      await trx
        .insertInto('webhooks')
        .values({
          id: data.id,
          tenant_id: data.tenantId,
          url: data.url,
          events: data.events,
          created_at: event.occurredAt,
        })
        .execute();
    }
  },
};
