import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { ID_PREFIX, NotFound, newId } from '@keyward/core';
import {
  issueOperatorToken,
  metadataFor,
  requirePermission,
  type CommandContext,
  type Role,
} from '@keyward/auth';
import { EventStore } from '@keyward/event-store';
import { OperatorReader } from './operator.reader';
import {
  OPERATOR_STREAM,
  TENANT_STREAM,
  decideCreateOperator,
  decideCreateTenant,
  decideDeleteOperator,
  evolveOperator,
  tenantStreamId,
  type Operator,
  type OperatorEvent,
} from './tenant';

export class CreateTenant {
  constructor(
    readonly ctx: CommandContext,
    readonly id: string,
    readonly name: string,
  ) {}
}

export class CreateOperator {
  /** `tenantId` is the tenant to create in, already checked against what the caller may reach. */
  constructor(
    readonly ctx: CommandContext,
    readonly tenantId: string,
    readonly name: string,
    readonly role: Role,
  ) {}
}

export class DeleteOperator {
  /** `tenantId` undefined: any tenant (the bootstrap token). */
  constructor(
    readonly ctx: CommandContext,
    readonly tenantId: string | undefined,
    readonly id: string,
    readonly reason: string | null,
  ) {}
}

export interface CreatedOperator {
  id: string;
  /** Shown to the caller this once; only its SHA-256 is kept. */
  token: string;
}

@CommandHandler(CreateTenant)
export class CreateTenantHandler implements ICommandHandler<CreateTenant, string> {
  constructor(@Inject(EventStore) private readonly store: EventStore) {}

  async execute({ ctx, id, name }: CreateTenant): Promise<string> {
    const streamId = tenantStreamId(id);
    const exists = (await this.store.streamVersion(streamId)) > 0;
    const events = decideCreateTenant(exists, id, name);
    // Expected version 0: of two racing creates of one tenant, exactly one succeeds.
    await this.store.append(
      [{ tenantId: id, streamId, streamType: TENANT_STREAM, expectedVersion: 0, events }],
      metadataFor(ctx),
    );
    return id;
  }
}

@CommandHandler(CreateOperator)
export class CreateOperatorHandler implements ICommandHandler<CreateOperator, CreatedOperator> {
  constructor(
    @Inject(EventStore) private readonly store: EventStore,
    @Inject(OperatorReader) private readonly reader: OperatorReader,
  ) {}

  async execute({ ctx, tenantId, name, role }: CreateOperator): Promise<CreatedOperator> {
    // Checked here, not only at the route: a key must not make people on any path.
    requirePermission(ctx.caller, 'manage-operators');
    if (!(await this.reader.tenant(tenantId))) throw new NotFound(`no tenant ${tenantId}`);
    const id = newId(ID_PREFIX.operator);
    const token = issueOperatorToken();
    const events = decideCreateOperator({
      type: 'OperatorCreated',
      data: { id, tenantId, name, role, tokenHash: token.hash, tokenPrefix: token.prefix },
    });
    await this.store.append(
      [{ tenantId, streamId: id, streamType: OPERATOR_STREAM, expectedVersion: 0, events }],
      metadataFor(ctx),
    );
    return { id, token: token.token };
  }
}

@CommandHandler(DeleteOperator)
export class DeleteOperatorHandler implements ICommandHandler<DeleteOperator, string> {
  constructor(
    @Inject(EventStore) private readonly store: EventStore,
    @Inject(OperatorReader) private readonly reader: OperatorReader,
  ) {}

  async execute({ ctx, tenantId, id, reason }: DeleteOperator): Promise<string> {
    requirePermission(ctx.caller, 'manage-operators');
    const row = await this.reader.get(tenantId, id);
    if (!row) throw new NotFound(`no operator ${id}`);
    const history = await this.store.readStream(id);
    const state = history.reduce<Operator | null>(
      (s, e) =>
        evolveOperator(s, { type: e.type, data: e.data, occurredAt: e.occurredAt } as OperatorEvent & {
          occurredAt: Date;
        }),
      null,
    );
    const events = decideDeleteOperator(state);
    await this.store.append(
      [
        {
          tenantId: row.tenant_id,
          streamId: id,
          streamType: OPERATOR_STREAM,
          expectedVersion: state!.version,
          events,
        },
      ],
      metadataFor(ctx, reason),
    );
    return id;
  }
}

export const tenantHandlers = [CreateTenantHandler, CreateOperatorHandler, DeleteOperatorHandler];
