import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { CLOCK, newId, type Clock } from '@keyward/core';
import { metadataFor, tenantOf, type CommandContext } from '@keyward/auth';
import { CONFIG, type KeywardConfig } from '@keyward/config';
import { EventStore } from '@keyward/event-store';
import { checkWebhookUrl } from './address-policy';
import { WEBHOOK_ID_PREFIX } from './payload';
import { SecretBox } from './secret-box';
import { newSigningSecret } from './signing';
import { WEBHOOK_STREAM, checkEventNames, type WebhookEvent } from './webhook.events';

export class RegisterWebhookCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly url: string,
    readonly events: readonly string[],
  ) {}
}

/** A webhook and its signing secret, which leaves Keyward only in this answer. */
export interface RegisteredWebhook {
  id: string;
  signingSecret: string;
}

@CommandHandler(RegisterWebhookCommand)
export class RegisterWebhookHandler implements ICommandHandler<RegisterWebhookCommand, RegisteredWebhook> {
  constructor(
    @Inject(EventStore) private readonly store: EventStore,
    @Inject(SecretBox) private readonly box: SecretBox,
    @Inject(CONFIG) private readonly config: KeywardConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async execute({ ctx, url, events }: RegisterWebhookCommand): Promise<RegisteredWebhook> {
    const tenantId = tenantOf(ctx.caller);
    const names = checkEventNames(events);
    const checked = await checkWebhookUrl(url, { allowPrivate: this.config.webhookAllowPrivate });
    const id = newId(WEBHOOK_ID_PREFIX);
    const signingSecret = newSigningSecret();
    const event: WebhookEvent = {
      type: 'WebhookRegistered',
      data: { id, tenantId, url: checked.toString(), events: names },
    };
    // The event is permanent and exported, so the secret goes beside it: encrypted, into its own
    // table, in the same transaction (the append's guard), so a webhook never exists without it.
    const ciphertext = this.box.encrypt(signingSecret, id);
    await this.store.append(
      [{ tenantId, streamId: id, streamType: WEBHOOK_STREAM, expectedVersion: 0, events: [event] }],
      metadataFor(ctx),
      async (trx) => {
        await trx
          .insertInto('webhook_secrets')
          .values({ webhook_id: id, tenant_id: tenantId, ciphertext, created_at: this.clock.now() })
          .execute();
      },
    );
    return { id, signingSecret };
  }
}

export const webhookHandlers = [RegisterWebhookHandler];
