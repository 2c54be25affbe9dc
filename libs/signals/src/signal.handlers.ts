import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { ID_PREFIX, NotFound, isId } from '@keyward/core';
import { metadataFor, tenantOf, type CommandContext } from '@keyward/auth';
import { DB, type Db } from '@keyward/db';
import { EventStore } from '@keyward/event-store';
import { raiseSignals, signalAppend, type RaiseResult } from './raise-signals';
import {
  decideAcknowledge,
  decideResolve,
  foldSignal,
  type RaiseSignal,
  type Signal,
  type SignalFact,
} from './signal';
import type { SignalEvent } from './signal.events';
import { SignalReader } from './signal.reader';

export class RaiseSignalCommand {
  constructor(
    readonly ctx: CommandContext,
    readonly raise: Omit<RaiseSignal, 'tenantId'>,
  ) {}
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

@CommandHandler(RaiseSignalCommand)
export class RaiseSignalHandler implements ICommandHandler<RaiseSignalCommand, RaiseResult> {
  constructor(
    @Inject(EventStore) private readonly store: EventStore,
    @Inject(DB) private readonly db: Db,
  ) {}

  async execute({ ctx, raise: input }: RaiseSignalCommand): Promise<RaiseResult> {
    const raise: RaiseSignal = { ...input, tenantId: tenantOf(ctx.caller) };
    await this.assertSubject(raise);
    const [result] = await raiseSignals(this.db, this.store, [raise], metadataFor(ctx, null));
    return result;
  }

  /** The account (and key, when named) in the caller's tenant; 404 otherwise. */
  private async assertSubject(raise: RaiseSignal): Promise<void> {
    const notFound = () => new NotFound(`no service account ${raise.serviceAccountId}`);
    if (!isId(raise.serviceAccountId, ID_PREFIX.serviceAccount)) throw notFound();
    const row = await this.db
      .selectFrom('service_accounts')
      .select('id')
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
