import { serviceAccountFromRow, type ServiceAccount, type ServiceAccountListing } from '@keyward/accounts';

/**
 * The account as API.md shows it: the aggregate's fields as the read model holds them, the
 * columns other streams feed (key count, first and last use), and times as ISO-8601 with ms.
 */
export type ServiceAccountView = Omit<ServiceAccount, 'createdAt' | 'updatedAt'> & {
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
