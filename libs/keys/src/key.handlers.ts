import { Inject, Optional } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { CLOCK, Conflict, ID_PREFIX, NotFound, isId, newId, type Clock } from '@keyward/core';
import { metadataFor, requirePermission, tenantOf, type CommandContext } from '@keyward/auth';
import type { Transaction } from 'kysely';
import { DB, type Database, type Db } from '@keyward/db';
import { EventStore, type StreamAppend } from '@keyward/event-store';
import { assertWithinReach, reachOfKey } from './delegation';
import { issueKeySecret, keyHash } from './key-secret';
import {
  assertAccountVersion,
  assertKeyVersion,
  assertRoomForKey,
  decideExposure,
  decideIssue,
  decideRevoke,
  decideRotate,
  foldKey,
  revokeIfLive,
  type IssueKey,
  type Key,
  type KeyAccount,
  type KeyFact,
} from './key';
import { KEY_STREAM, SERVICE_ACCOUNT_STREAM, type KeyEvent } from './key.events';
import { KeyReader, liveKeyCount } from './key.reader';
import { keyFromRow } from './keys.projection';
import {
  POLICY_STREAM,
  decidePolicyChange,
  policyStreamId,
  type PolicyChanges,
  type TenantPolicy,
} from './policy';

export class IssueKeyCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly accountId: string,
    readonly input: Omit<IssueKey, 'id'>,
    readonly reason: string | null,
  ) {}
}

export class RotateKeyCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly keyId: string,
    readonly graceSeconds: number,
    readonly reason: string | null,
    readonly expectedVersion?: number,
  ) {}
}

export class RevokeKeyCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly keyId: string,
    readonly reason: string | null,
    readonly emergency: boolean,
    readonly expectedVersion?: number,
  ) {}
}

export class RevokeAccountKeysCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly accountId: string,
    readonly reason: string | null,
    /** The account version the caller saw (If-Match). */
    readonly expectedVersion?: number,
  ) {}
}

export class ChangePolicyCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly changes: PolicyChanges,
    readonly reason: string | null,
    readonly expectedVersion?: number,
  ) {}
}

/** A key and its secret, which exists only in this answer. */
export interface IssuedKey {
  id: string;
  secret: string;
}

/**
 * What key handlers share: loading keys and accounts in the caller's tenant, and appending. The
 * injections are declared here once; a handler without a constructor of its own inherits them.
 */
class KeyCommands {
  constructor(
    @Inject(EventStore) protected readonly store: EventStore,
    @Inject(KeyReader) protected readonly reader: KeyReader,
    @Inject(DB) protected readonly db: Db,
    @Inject(CLOCK) protected readonly clock: Clock,
  ) {}

  protected async loadKey(ctx: CommandContext, keyId: string): Promise<Key> {
    const row = await this.reader.get(tenantOf(ctx.caller), keyId);
    if (!row) throw new NotFound(`no key ${keyId}`);
    const events = await this.store.readStream(keyId);
    return foldKey(events.map((e) => ({ type: e.type, data: e.data, occurredAt: e.occurredAt }) as KeyFact))!;
  }

  /** The account as key decisions see it, with the stream version it was read at. */
  protected async loadAccount(
    ctx: CommandContext,
    accountId: string,
  ): Promise<KeyAccount & { version: number; allowedCidrs: string[] }> {
    if (!isId(accountId, ID_PREFIX.serviceAccount)) throw new NotFound(`no service account ${accountId}`);
    const row = await this.db
      .selectFrom('service_accounts')
      .selectAll()
      .where('tenant_id', '=', tenantOf(ctx.caller))
      .where('id', '=', accountId)
      .executeTakeFirst();
    if (!row) throw new NotFound(`no service account ${accountId}`);
    return {
      id: row.id,
      tenantId: row.tenant_id,
      status: row.status as KeyAccount['status'],
      environment: row.environment as KeyAccount['environment'],
      allowedScopes: row.allowed_scopes,
      boundaries: row.boundaries,
      allowedCidrs: row.allowed_cidrs,
      version: row.version,
    };
  }

  /**
   * A key calling may hand on only what it holds itself (delegation.ts): every key these events
   * issue must lie within the calling key's reach. People and the system are not limited here.
   */
  protected async assertMayHandOn(
    ctx: CommandContext,
    events: readonly KeyEvent[],
    account: { boundaries: string[]; allowedCidrs: string[] },
  ): Promise<void> {
    if (ctx.caller.kind !== 'service-account') return;
    const holder = await this.reader.keyReach(ctx.caller);
    for (const event of events) {
      if (event.type === 'KeyIssued') assertWithinReach(holder, reachOfKey(event.data, account), 'a key');
    }
  }

  protected keyAppend(
    ctx: CommandContext,
    keyId: string,
    expectedVersion: number,
    events: KeyEvent[],
  ): StreamAppend {
    return {
      tenantId: tenantOf(ctx.caller),
      streamId: keyId,
      streamType: KEY_STREAM,
      expectedVersion,
      events,
    };
  }

  /** No events for the account: only the condition that its version is still the one decided on. */
  protected accountCondition(ctx: CommandContext, account: { id: string; version: number }): StreamAppend {
    return {
      tenantId: tenantOf(ctx.caller),
      streamId: account.id,
      streamType: SERVICE_ACCOUNT_STREAM,
      expectedVersion: account.version,
      events: [],
    };
  }

  /**
   * Inside the append's transaction, with the account's stream row locked: the live keys counted
   * again, so issues racing on one account cannot together pass maxActiveKeys.
   */
  protected roomGuard(accountId: string, policy: TenantPolicy, now: Date) {
    return async (trx: Transaction<Database>) =>
      assertRoomForKey(await liveKeyCount(trx, accountId, now), policy);
  }

  protected async issueContext(ctx: CommandContext, account: KeyAccount, keyId: string) {
    const now = this.clock.now();
    const [{ policy }, live] = await Promise.all([
      this.reader.policy(tenantOf(ctx.caller)),
      this.reader.liveKeys(account.id, now),
    ]);
    return {
      account,
      policy,
      liveKeys: live.length,
      now,
      secret: issueKeySecret(keyId, account.environment),
    };
  }
}

@CommandHandler(IssueKeyCommand)
export class IssueKeyHandler extends KeyCommands implements ICommandHandler<IssueKeyCommand, IssuedKey> {
  async execute({ ctx, accountId, input, reason }: IssueKeyCommand): Promise<IssuedKey> {
    const account = await this.loadAccount(ctx, accountId);
    const id = newId(ID_PREFIX.key);
    const issue = await this.issueContext(ctx, account, id);
    const events = decideIssue({ ...input, id }, issue);
    await this.assertMayHandOn(ctx, events, account);
    await this.store.append(
      [this.accountCondition(ctx, account), this.keyAppend(ctx, id, 0, events)],
      metadataFor(ctx, reason),
      this.roomGuard(account.id, issue.policy, issue.now),
    );
    return { id, secret: issue.secret.secret };
  }
}

@CommandHandler(RotateKeyCommand)
export class RotateKeyHandler extends KeyCommands implements ICommandHandler<RotateKeyCommand, IssuedKey> {
  async execute({ ctx, keyId, graceSeconds, reason, expectedVersion }: RotateKeyCommand): Promise<IssuedKey> {
    const old = await this.loadKey(ctx, keyId);
    assertKeyVersion(old, expectedVersion);
    const account = await this.loadAccount(ctx, old.serviceAccountId);
    const id = newId(ID_PREFIX.key);
    const issue = await this.issueContext(ctx, account, id);
    const rotation = decideRotate(old, id, graceSeconds, issue);
    // The caller is answered the new key's secret: rotating is issuing.
    await this.assertMayHandOn(ctx, rotation.issued, account);
    // Two racing rotations of one key: both expect the old key's version, exactly one wins.
    await this.store.append(
      [
        this.accountCondition(ctx, account),
        this.keyAppend(ctx, old.id, old.version, rotation.old),
        this.keyAppend(ctx, id, 0, rotation.issued),
      ],
      metadataFor(ctx, reason),
      this.roomGuard(account.id, issue.policy, issue.now),
    );
    return { id, secret: issue.secret.secret };
  }
}

@CommandHandler(RevokeKeyCommand)
export class RevokeKeyHandler extends KeyCommands implements ICommandHandler<RevokeKeyCommand, string> {
  async execute({ ctx, keyId, reason, emergency, expectedVersion }: RevokeKeyCommand): Promise<string> {
    const key = await this.loadKey(ctx, keyId);
    assertKeyVersion(key, expectedVersion);
    await this.store.append(
      [this.keyAppend(ctx, key.id, key.version, decideRevoke(key, 'manual', emergency))],
      metadataFor(ctx, reason),
    );
    return key.id;
  }
}

@CommandHandler(RevokeAccountKeysCommand)
export class RevokeAccountKeysHandler
  extends KeyCommands
  implements ICommandHandler<RevokeAccountKeysCommand, string[]>
{
  /** Break-glass: every live key of the account in one commit. Answers the revoked keys' ids. */
  async execute({ ctx, accountId, reason, expectedVersion }: RevokeAccountKeysCommand): Promise<string[]> {
    const account = await this.loadAccount(ctx, accountId);
    // Checked here: an account with no live key appends nothing, so the store would not check it.
    // The account condition of the append then holds the version until the commit.
    assertAccountVersion(account, expectedVersion);
    const now = this.clock.now();
    const live = await this.reader.liveKeys(account.id, now);
    const appends = live.map((row) =>
      this.keyAppend(ctx, row.id, row.version, revokeIfLive(keyFromRow(row), now, 'break-glass')),
    );
    // A key issued between our read and the account lock would escape the break-glass: refuse.
    const guard = async (trx: Transaction<Database>) => {
      if ((await liveKeyCount(trx, account.id, now)) !== live.length) {
        throw new Conflict('the account gained a key while its keys were being revoked; try again');
      }
    };
    await this.store.append(
      [this.accountCondition(ctx, account), ...appends],
      metadataFor(ctx, reason),
      guard,
    );
    return live.map((row) => row.id);
  }
}

@CommandHandler(ChangePolicyCommand)
export class ChangePolicyHandler extends KeyCommands implements ICommandHandler<ChangePolicyCommand, void> {
  async execute({ ctx, changes, reason, expectedVersion }: ChangePolicyCommand): Promise<void> {
    requirePermission(ctx.caller, 'change-policy');
    const tenantId = tenantOf(ctx.caller);
    const { policy, version } = await this.reader.policy(tenantId);
    // Checked here too: a change that changes nothing appends nothing, so the store would not check it.
    if (expectedVersion !== undefined && expectedVersion !== version) {
      throw new Conflict(`the tenant policy is at version ${version}, not ${expectedVersion}`, {
        expectedVersion,
        actualVersion: version,
      });
    }
    const events = decidePolicyChange(policy, changes);
    await this.store.append(
      [
        {
          tenantId,
          streamId: policyStreamId(tenantId),
          streamType: POLICY_STREAM,
          expectedVersion: version,
          events,
        },
      ],
      metadataFor(ctx, reason),
    );
  }
}

export interface Exposure {
  key: string;
  url: string | null;
  source: string | null;
}

export type ExposureResult =
  | { matched: false }
  | {
      matched: true;
      keyId: string;
      prefix: string;
      serviceAccount: { id: string; name: string };
      action: 'revoked' | 'flagged' | 'already-revoked';
    };

/**
 * Appends that must commit together with a key's exposure: the KEY_EXPOSED signal. Signals build
 * on keys, so keys cannot import them; signals provide this under EXPOSURE_FOLLOW_UP instead.
 */
export interface ExposureFollowUp {
  appendsFor(key: Key, exposure: Exposure): Promise<StreamAppend[]>;
}
export const EXPOSURE_FOLLOW_UP = Symbol('EXPOSURE_FOLLOW_UP');

export class ReportExposuresCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly exposures: Exposure[],
  ) {}
}

@CommandHandler(ReportExposuresCommand)
export class ReportExposuresHandler
  extends KeyCommands
  implements ICommandHandler<ReportExposuresCommand, ExposureResult[]>
{
  constructor(
    @Inject(EventStore) store: EventStore,
    @Inject(KeyReader) reader: KeyReader,
    @Inject(DB) db: Db,
    @Inject(CLOCK) clock: Clock,
    @Optional() @Inject(EXPOSURE_FOLLOW_UP) private readonly followUp: ExposureFollowUp | null = null,
  ) {
    super(store, reader, db, clock);
  }

  /** Each raw key is matched by its SHA-256 and forgotten: it reaches no event, log or answer. */
  async execute({ ctx, exposures }: ReportExposuresCommand): Promise<ExposureResult[]> {
    const tenantId = tenantOf(ctx.caller);
    const { policy } = await this.reader.policy(tenantId);
    const results: ExposureResult[] = [];
    for (const exposure of exposures) {
      const row = await this.reader.byHash(tenantId, keyHash(exposure.key));
      if (!row) {
        results.push({ matched: false });
        continue;
      }
      const key = await this.loadKey(ctx, row.id);
      const account = await this.loadAccountName(row.service_account_id);
      const events = decideExposure(key, policy.exposureAction, {
        url: exposure.url,
        source: exposure.source,
      });
      const followUps = this.followUp ? await this.followUp.appendsFor(key, exposure) : [];
      await this.store.append(
        [this.keyAppend(ctx, key.id, key.version, events), ...followUps],
        metadataFor(ctx, 'key exposed'),
      );
      results.push({
        matched: true,
        keyId: key.id,
        prefix: key.prefix,
        serviceAccount: { id: row.service_account_id, name: account },
        action: key.revokedAt ? 'already-revoked' : policy.exposureAction === 'flag' ? 'flagged' : 'revoked',
      });
    }
    return results;
  }

  private async loadAccountName(accountId: string): Promise<string> {
    const row = await this.db
      .selectFrom('service_accounts')
      .select('name')
      .where('id', '=', accountId)
      .executeTakeFirst();
    return row?.name ?? accountId;
  }
}

export const keyHandlers = [
  ReportExposuresHandler,
  IssueKeyHandler,
  RotateKeyHandler,
  RevokeKeyHandler,
  RevokeAccountKeysHandler,
  ChangePolicyHandler,
];
