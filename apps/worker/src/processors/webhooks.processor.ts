import { UnrecoverableError, type Job } from 'bullmq';
import type { KeywardConfig } from '@keyward/config';
import type { Db } from '@keyward/db';
import type { DeliverWebhookJob } from '@keyward/jobs';
import { SecretBox, attemptDelivery, type DeliveryOutcome } from '@keyward/webhooks';

/** API.md leaves the receiver's time to answer to us: long enough for a slow one, short enough for a stuck one. */
const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * One attempt at one webhook delivery. A failure throws so BullMQ retries with backoff; a failure
 * that no retry can mend (the address is refused), or the last attempt's, ends the job.
 */
export function webhooksProcessor(db: Db, config: KeywardConfig) {
  const settings = {
    box: new SecretBox(config.encryptionKey),
    allowPrivate: config.webhookAllowPrivate,
    timeoutMs: DELIVERY_TIMEOUT_MS,
  };
  return async (job: Job<DeliverWebhookJob>): Promise<DeliveryOutcome> => {
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const outcome = await attemptDelivery(db, job.data.deliveryId, final, settings);
    if (outcome.status === 'retry') throw new Error(outcome.error ?? 'the delivery failed');
    if (outcome.status === 'failed') throw new UnrecoverableError(outcome.error ?? 'the delivery failed');
    return outcome;
  };
}
