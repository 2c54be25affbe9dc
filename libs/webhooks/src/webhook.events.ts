import { ValidationFailed } from '@keyward/core';

/** The webhook's event catalogue: one stream per webhook. Events hold no signing secret, ever. */
export const WEBHOOK_STREAM = 'webhook';

export interface WebhookRegisteredV1 {
  id: string;
  tenantId: string;
  url: string;
  events: WebhookEventName[];
}

export type WebhookEvent = { type: 'WebhookRegistered'; data: WebhookRegisteredV1 };

/** Stored event type → the name a webhook subscribes to and a delivery carries in `type`. */
export const WEBHOOK_EVENT_NAMES = {
  KeyIssued: 'key.issued',
  KeyRotated: 'key.rotated',
  KeyRevoked: 'key.revoked',
  KeyExpired: 'key.expired',
  ServiceAccountCreated: 'account.created',
  ServiceAccountDisabled: 'account.disabled',
  ServiceAccountDeleted: 'account.deleted',
  SignalRaised: 'signal.raised',
} as const;

export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[keyof typeof WEBHOOK_EVENT_NAMES];

export const WEBHOOK_EVENTS: readonly WebhookEventName[] = Object.values(WEBHOOK_EVENT_NAMES);

/** Names API.md promises that have no event behind them yet: refused with a reason, not as typos. */
const NOT_YET_AVAILABLE: readonly string[] = ['approval.requested'];

/** The webhook name of a stored event type, or undefined when webhooks do not carry it. */
export function webhookEventName(eventType: string): WebhookEventName | undefined {
  // Own properties only: 'toString' is not an event webhooks carry.
  return Object.hasOwn(WEBHOOK_EVENT_NAMES, eventType)
    ? (WEBHOOK_EVENT_NAMES as Record<string, WebhookEventName>)[eventType]
    : undefined;
}

/** Checks a subscription's event names; answers them without repeats, in the order given. */
export function checkEventNames(names: readonly string[]): WebhookEventName[] {
  const errors = names.flatMap((name, i) => {
    if (NOT_YET_AVAILABLE.includes(name)) {
      return [{ field: `events.${i}`, message: `${name} is not available yet` }];
    }
    if (!(WEBHOOK_EVENTS as readonly string[]).includes(name)) {
      return [{ field: `events.${i}`, message: `must be one of ${WEBHOOK_EVENTS.join(', ')}` }];
    }
    return [];
  });
  if (errors.length) throw new ValidationFailed('events holds a name webhooks cannot subscribe to', errors);
  return [...new Set(names)] as WebhookEventName[];
}
