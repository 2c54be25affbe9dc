import { KEY_STREAM, KeyReader, decideNarrowToCeiling, keyFromRow, revokeIfLive } from '@keyward/keys';
import type { Clock } from '@keyward/core';
import type { StreamAppend } from '@keyward/event-store';

/**
 * What a change to an account does to its keys, as appends to the keys' streams that go into the
 * account's own commit: deleting revokes every live key; narrowing the ceiling drops the scopes
 * it no longer covers from every key. Each key append expects the version its row was read at.
 */
export class AccountKeys {
  constructor(
    private readonly reader: KeyReader,
    private readonly clock: Clock,
  ) {}

  async revocationsOnDelete(tenantId: string, accountId: string): Promise<StreamAppend[]> {
    const now = this.clock.now();
    const live = await this.reader.liveKeys(accountId, now);
    return live.map((row) => ({
      tenantId,
      streamId: row.id,
      streamType: KEY_STREAM,
      expectedVersion: row.version,
      events: revokeIfLive(keyFromRow(row), now, 'account-deleted'),
    }));
  }

  async narrowingsTo(
    tenantId: string,
    accountId: string,
    ceiling: readonly string[],
  ): Promise<StreamAppend[]> {
    const keys = await this.reader.unrevokedKeys(accountId);
    return keys.map((row) => ({
      tenantId,
      streamId: row.id,
      streamType: KEY_STREAM,
      expectedVersion: row.version,
      events: decideNarrowToCeiling(keyFromRow(row), ceiling),
    }));
  }
}
