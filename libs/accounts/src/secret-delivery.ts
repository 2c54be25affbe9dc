import type { Transaction } from 'kysely';
import { PolicyViolation, ValidationFailed, type Clock } from '@keyward/core';
import type { Database, Db } from '@keyward/db';
import { SecretBox, checkWebhookUrl, newSigningSecret, type Resolve } from '@keyward/webhooks';
import type { SecretDelivery, ServiceAccountEvent } from './service-account.events';

/**
 * The signing secret of an account's `secretDelivery` (API.md "Service accounts"): the worker
 * signs each rotated key it POSTs there with it, like a webhook delivery. Kept like a webhook's:
 * made fresh by each request that sets `secretDelivery`, answered that once, stored only
 * encrypted (bound to the account id) in `secret_delivery_secrets`, written by the account
 * append's guard so it commits or rolls back with the events, and never put in an event.
 */

/** A guard for ServiceAccountRepository.append: runs inside the append's transaction. */
export type AppendGuard = (trx: Transaction<Database>) => Promise<void>;

/** A fresh signing secret and the guard that stores it (replacing any earlier one). */
export interface IssuedSigningSecret {
  signingSecret: string;
  store: AppendGuard;
}

const FIELD = 'secretDelivery.url';

export class SecretDeliverySecrets {
  constructor(
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly options: { allowPrivate: boolean; resolve?: Resolve },
  ) {}

  /**
   * The URL under the webhooks' address policy: its form (400) and, unless private addresses are
   * allowed, where its host points now (422). The answers name `secretDelivery.url`.
   */
  async checkUrl(url: string): Promise<void> {
    try {
      await checkWebhookUrl(url, this.options);
    } catch (error) {
      if (error instanceof ValidationFailed) {
        throw new ValidationFailed(
          `${FIELD} is not valid`,
          error.errors.map((e) => ({ field: FIELD, message: e.message })),
        );
      }
      if (error instanceof PolicyViolation) {
        throw new PolicyViolation(`${FIELD} is refused: ${error.message}`, FIELD);
      }
      throw error;
    }
  }

  issue(tenantId: string, serviceAccountId: string): IssuedSigningSecret {
    const signingSecret = newSigningSecret();
    const ciphertext = this.box.encrypt(signingSecret, serviceAccountId);
    const createdAt = this.clock.now();
    return {
      signingSecret,
      store: async (trx) => {
        await trx
          .insertInto('secret_delivery_secrets')
          .values({
            service_account_id: serviceAccountId,
            tenant_id: tenantId,
            ciphertext,
            created_at: createdAt,
          })
          .onConflict((oc) =>
            oc
              .column('service_account_id')
              .doUpdateSet({ tenant_id: tenantId, ciphertext, created_at: createdAt }),
          )
          .execute();
      },
    };
  }

  /** The guard that removes the account's secret (its `secretDelivery` is cleared). */
  remove(serviceAccountId: string): AppendGuard {
    return async (trx) => {
      await trx
        .deleteFrom('secret_delivery_secrets')
        .where('service_account_id', '=', serviceAccountId)
        .execute();
    };
  }
}

/**
 * Setting `secretDelivery` issues a new secret, so it is a change to record even when the URL
 * stays the same (decideUpdate would see no change and append nothing, so no guard would run).
 */
export function recordingSecretDelivery(
  events: ServiceAccountEvent[],
  secretDelivery: SecretDelivery,
): ServiceAccountEvent[] {
  const value = { url: secretDelivery.url };
  if (!events.some((e) => e.type === 'ServiceAccountUpdated')) {
    return [...events, { type: 'ServiceAccountUpdated', data: { changes: { secretDelivery: value } } }];
  }
  return events.map((e) =>
    e.type === 'ServiceAccountUpdated'
      ? { ...e, data: { changes: { ...e.data.changes, secretDelivery: value } } }
      : e,
  );
}

/**
 * For the worker: the signing secret of the account's `secretDelivery`, or null when it has none
 * (or it is another tenant's). Throws when the stored ciphertext does not open under `box`.
 */
export async function secretDeliverySigningSecret(
  db: Db,
  box: SecretBox,
  tenantId: string,
  serviceAccountId: string,
): Promise<string | null> {
  const row = await db
    .selectFrom('secret_delivery_secrets')
    .select('ciphertext')
    .where('service_account_id', '=', serviceAccountId)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  return row ? box.decrypt(row.ciphertext, serviceAccountId) : null;
}
