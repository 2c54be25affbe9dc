import { createHash } from 'node:crypto';
import type { WebhookEventName } from './webhook.events';

export const WEBHOOK_ID_PREFIX = 'wh_';
export const DELIVERY_ID_PREFIX = 'whd_';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * The delivery of one event to one webhook has one id, whoever computes it and however often:
 * the row insert and the BullMQ job id both use it, so a repeat adds nothing. It has the form of
 * every other id (a prefix and 20 base62 characters, no ':' for BullMQ), from SHA-256 of the pair.
 */
export function deliveryId(webhookId: string, eventId: string): string {
  const digest = createHash('sha256').update(`${webhookId}\n${eventId}`).digest();
  let value = BigInt(`0x${digest.toString('hex')}`);
  let out = '';
  for (let i = 0; i < 20; i++) {
    out += BASE62[Number(value % 62n)];
    value /= 62n;
  }
  return `${DELIVERY_ID_PREFIX}${out}`;
}

/** What a delivery needs of a committed event. */
export interface DeliveredEvent {
  tenantId: string;
  streamId: string;
  occurredAt: Date;
  data: unknown;
}

export interface WebhookPayload {
  id: string;
  type: WebhookEventName;
  occurredAt: string;
  tenantId: string;
  data: Record<string, unknown>;
}

/**
 * The body POSTed to the receiver: the event's own data (events never hold a secret) and the
 * stream it happened to, under the delivery id a receiver can use to drop a repeat.
 */
export function buildPayload(id: string, type: WebhookEventName, event: DeliveredEvent): WebhookPayload {
  const data = event.data && typeof event.data === 'object' ? (event.data as Record<string, unknown>) : {};
  return {
    id,
    type,
    occurredAt: event.occurredAt.toISOString(),
    tenantId: event.tenantId,
    data: { ...data, streamId: event.streamId },
  };
}
