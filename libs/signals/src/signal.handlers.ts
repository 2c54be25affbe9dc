import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { ID_PREFIX, NotFound, isId, isUniqueViolation, newId } from '@keyward/core';
import { metadataFor, tenantOf, type CommandContext } from '@keyward/auth';
import { DB, type Db } from '@keyward/db';
import { EventStore, StreamVersionConflict, type StreamAppend } from '@keyward/event-store';
import {
  decideAcknowledge,
  decideRaise,
  decideResolve,
  foldSignal,
  signalSubject,
  type RaiseSignal,
  type Signal,
  type SignalAccount,
  type SignalFact,
} from './signal';
import { SIGNAL_ID_PREFIX, SIGNAL_STREAM, type SignalEvent } from './signal.events';
import { SignalReader } from './signal.reader';

/**
 * Raises that lose a race (to open the signal, or to count it) look again and count the winner.
 * Each lost race means another raiser committed, so this bounds how many may pile up at once.
 */
const RAISE_ATTEMPTS = 20;

export class RaiseSignalCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly raise: Omit<RaiseSignal, 'tenantId'>,
  ) {}
}

export interface RaiseResult {
  outcome: 'raised' | 'counted' | 'suppressed';
  signalId: string | null;
}

export class AcknowledgeSignalCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly signalId: string,
    readonly note: string | null,
  ) {}
}

export class ResolveSignalCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly signalId: string,
    readonly note: string | null,
    readonly auto = false,
  ) {}
}

/** The append for one raise decision, or none when the account does not take such signals. */
export function signalAppend(
  tenantId: string,
  decision: { signalId: string; expectedVersion: number; events: SignalEvent[] },
): StreamAppend {
  return {
    tenantId,
    streamId: decision.signalId,
    streamType: SIGNAL_STREAM,
    expectedVersion: decision.expectedVersion,
    events: decision.events,
  };
}

/** A raise lost to a concurrent one: the other opened the signal, or counted it first. */
function lostRace(error: unknown): boolean {
  return error instanceof StreamVersionConflict || isUniqueViolation(error, 'signals_unresolved');
}

@CommandHandler(RaiseSignalCommand)
export class RaiseSignalHandler implements ICommandHandler<RaiseSignalCommand, RaiseResult> {
  constructor(
    @Inject(EventStore) private readonly store: EventStore,
    @Inject(SignalReader) private readonly reader: SignalReader,
    @Inject(DB) private readonly db: Db,
  ) {}

  async execute({ ctx, raise: input }: RaiseSignalCommand): Promise<RaiseResult> {
    const tenantId = tenantOf(ctx.caller);
    const raise: RaiseSignal = { ...input, tenantId };
    const account = await this.loadSubject(raise);
    for (let attempt = 1; ; attempt++) {
      const current = await this.reader.unresolved(tenantId, raise.type, signalSubject(raise));
      const decision = decideRaise(current, raise, account, newId(SIGNAL_ID_PREFIX));
      if (decision.outcome === 'suppressed') return { outcome: 'suppressed', signalId: null };
      try {
        await this.store.append([signalAppend(tenantId, decision)], metadataFor(ctx, null));
        return { outcome: decision.outcome, signalId: decision.signalId };
      } catch (error) {
        if (!lostRace(error) || attempt >= RAISE_ATTEMPTS) throw error;
      }
    }
  }

  /** The account (and key, when named) in the caller's tenant; 404 otherwise. */
  private async loadSubject(raise: RaiseSignal): Promise<SignalAccount> {
    const notFound = () => new NotFound(`no service account ${raise.serviceAccountId}`);
    if (!isId(raise.serviceAccountId, ID_PREFIX.serviceAccount)) throw notFound();
    const row = await this.db
      .selectFrom('service_accounts')
      .select(['environment', 'abuse_detection'])
      .where('tenant_id', '=', raise.tenantId)
      .where('id', '=', raise.serviceAccountId)
      .executeTakeFirst();
    if (!row) throw notFound();
    if (raise.keyId !== null) {
      const key =
        isId(raise.keyId, ID_PREFIX.key) &&
        (await this.db
          .selectFrom('keys')
          .select('id')
          .where('tenant_id', '=', raise.tenantId)
          .where('service_account_id', '=', raise.serviceAccountId)
          .where('id', '=', raise.keyId)
          .executeTakeFirst());
      if (!key) throw new NotFound(`no key ${raise.keyId} on service account ${raise.serviceAccountId}`);
    }
    return {
      environment: row.environment as SignalAccount['environment'],
      abuseDetection: row.abuse_detection,
    };
  }
}

/** What acknowledge and resolve share: the signal, folded from its stream, in the caller's tenant. */
class SignalCommands {
  constructor(
    @Inject(EventStore) protected readonly store: EventStore,
    @Inject(SignalReader) protected readonly reader: SignalReader,
  ) {}

  protected async load(ctx: CommandContext, signalId: string): Promise<Signal> {
    if (!(await this.reader.get(tenantOf(ctx.caller), signalId))) throw new NotFound(`no signal ${signalId}`);
    const events = await this.store.readStream(signalId);
    return foldSignal(
      events.map((e) => ({ type: e.type, data: e.data, occurredAt: e.occurredAt }) as SignalFact),
    )!;
  }

  protected async append(ctx: CommandContext, signal: Signal, events: SignalEvent[], note: string | null) {
    await this.store.append(
      [signalAppend(signal.tenantId, { signalId: signal.id, expectedVersion: signal.version, events })],
      metadataFor(ctx, note),
    );
  }
}

@CommandHandler(AcknowledgeSignalCommand)
export class AcknowledgeSignalHandler
  extends SignalCommands
  implements ICommandHandler<AcknowledgeSignalCommand>
{
  async execute({ ctx, signalId, note }: AcknowledgeSignalCommand): Promise<void> {
    const signal = await this.load(ctx, signalId);
    await this.append(ctx, signal, decideAcknowledge(signal, note), note);
  }
}

@CommandHandler(ResolveSignalCommand)
export class ResolveSignalHandler extends SignalCommands implements ICommandHandler<ResolveSignalCommand> {
  async execute({ ctx, signalId, note, auto }: ResolveSignalCommand): Promise<void> {
    const signal = await this.load(ctx, signalId);
    await this.append(ctx, signal, decideResolve(signal, note, auto), note);
  }
}

export const signalHandlers = [RaiseSignalHandler, AcknowledgeSignalHandler, ResolveSignalHandler];
