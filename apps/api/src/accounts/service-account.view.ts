import {
  serviceAccountFromRow,
  type SecretDelivery,
  type ServiceAccount,
  type ServiceAccountListing,
} from '@keyward/accounts';

/**
 * The account as API.md shows it: the aggregate's fields as the read model holds them, the
 * columns other streams feed (key count, first and last use), and times as ISO-8601 with ms.
 */
export type ServiceAccountView = Omit<ServiceAccount, 'createdAt' | 'updatedAt' | 'secretDelivery'> & {
  /** `signingSecret` only in the answer to the request that set it (see withSigningSecret). */
  secretDelivery: (SecretDelivery & { signingSecret?: string }) | null;
  activeKeyCount: number;
  createdAt: string;
  updatedAt: string;
  firstSeenAt: string | null;
  lastSeenAt: string | null;
};

export function serviceAccountView(row: ServiceAccountListing): ServiceAccountView {
  const { createdAt, updatedAt, ...account } = serviceAccountFromRow(row);
  return {
    ...account,
    activeKeyCount: row.active_key_count,
    createdAt: createdAt.toISOString(),
    updatedAt: updatedAt.toISOString(),
    firstSeenAt: row.first_seen_at?.toISOString() ?? null,
    lastSeenAt: row.last_seen_at?.toISOString() ?? null,
  };
}

/**
 * The answer to a create or change that set `secretDelivery`: its new signing secret, shown this
 * once (API.md "Service accounts"); every other answer shows `secretDelivery: { url }` only.
 */
export function withSigningSecret(
  view: ServiceAccountView,
  signingSecret: string | null,
): ServiceAccountView {
  if (!signingSecret || !view.secretDelivery) return view;
  return { ...view, secretDelivery: { ...view.secretDelivery, signingSecret } };
}
