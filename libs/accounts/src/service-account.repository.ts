import { Conflict, NotFound, isId, isUniqueViolation, ID_PREFIX } from '@keyward/core';
import { metadataFor, tenantOf, type CommandContext } from '@keyward/auth';
import type { EventStore, StreamAppend } from '@keyward/event-store';
import type { AppendGuard } from './secret-delivery';
import { fold, type ServiceAccount, type ServiceAccountFact } from './service-account';
import { SERVICE_ACCOUNT_STREAM, type ServiceAccountEvent } from './service-account.events';

/**
 * Loads a service account by folding its stream, and appends what a decision produced with the
 * version it was decided on, so a concurrent change conflicts instead of being overwritten.
 */
export class ServiceAccountRepository {
  constructor(private readonly store: EventStore) {}

  /** The account in the caller's tenant; NotFound for a missing one and for another tenant's. */
  async load(ctx: CommandContext, id: string): Promise<ServiceAccount> {
    const tenantId = tenantOf(ctx.caller);
    const state = isId(id, ID_PREFIX.serviceAccount) ? await this.fold(id) : null;
    if (!state || state.tenantId !== tenantId) throw new NotFound(`no service account ${id}`);
    return state;
  }

  async fold(id: string, until?: Date): Promise<ServiceAccount | null> {
    const events = await this.store.readStream(id, { until });
    return fold(
      events.map((e) => ({ type: e.type, data: e.data, occurredAt: e.occurredAt }) as ServiceAccountFact),
    );
  }

  /** Appends `events` to the account's stream at `expectedVersion` (0 for a new account). */
  async append(
    ctx: CommandContext,
    accountId: string,
    expectedVersion: number,
    events: ServiceAccountEvent[],
    reason?: string | null,
    /** Appends to other streams that belong to this change (its keys), in the same commit. */
    also: StreamAppend[] = [],
    /** Writes that belong to this change outside the events (a secret), in the same transaction. */
    guard?: AppendGuard,
  ): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.store.append(
        [
          {
            tenantId: tenantOf(ctx.caller),
            streamId: accountId,
            streamType: SERVICE_ACCOUNT_STREAM,
            expectedVersion,
            events,
          },
          ...also,
        ],
        metadataFor(ctx, reason),
        guard,
      );
    } catch (error) {
      // The read model's unique index caught a name taken by a create that raced ours.
      if (isUniqueViolation(error, 'service_accounts_name')) {
        throw new Conflict('a service account with this name exists already in this environment');
      }
      throw error;
    }
  }
}
