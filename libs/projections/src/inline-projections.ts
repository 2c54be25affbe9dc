import { serviceAccountsProjection } from '@keyward/accounts';
import { keysProjection, policiesProjection } from '@keyward/keys';
import { signalsProjection } from '@keyward/signals';
import { tenantsProjection } from '@keyward/tenants';
import { webhooksProjection } from '@keyward/webhooks';
import type { InlineProjection } from '@keyward/event-store';

/** Every inline projection, in the order the event store runs them inside an append. */
export const inlineProjections: readonly InlineProjection[] = [
  tenantsProjection,
  serviceAccountsProjection,
  keysProjection,
  policiesProjection,
  webhooksProjection,
  signalsProjection,
];
