import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { Conflict, ID_PREFIX, newId } from '@keyward/core';
import { requirePermission, tenantOf, type CommandContext } from '@keyward/auth';
import { KeyReader, assertWithinReach } from '@keyward/keys';
import { AccountKeys } from './account-keys';
import { ceilingWidenings } from './ceiling';
import { routeGrant } from './grant-gate';
import {
  assertVersion,
  decideCreate,
  decideDelete,
  decideDisable,
  decideEnable,
  decideGrantScopes,
  decideRevokeScope,
  decideUpdate,
  type ServiceAccount,
} from './service-account';
import {
  ChangeServiceAccountStatus,
  CreateServiceAccount,
  GrantScopes,
  type CreateServiceAccountInput,
  RevokeScope,
  UpdateServiceAccount,
} from './service-account.commands';
import type { ServiceAccountEvent } from './service-account.events';
import { ServiceAccountReader } from './service-account.reader';
import { ServiceAccountRepository } from './service-account.repository';
import { SecretDeliverySecrets, recordingSecretDelivery } from './secret-delivery';

/**
 * Each handler: load the account, check If-Match, decide, append. Every one answers the account's
 * id; create and update also the signing secret a `secretDelivery` they set was given.
 */

/** What a create or change answers: the account's id and, when it set `secretDelivery`, its new signing secret. */
export interface ServiceAccountWritten {
  id: string;
  /** Leaves Keyward only in this answer. */
  signingSecret: string | null;
}

@CommandHandler(CreateServiceAccount)
export class CreateServiceAccountHandler implements ICommandHandler<
  CreateServiceAccount,
  ServiceAccountWritten
> {
  constructor(
    @Inject(ServiceAccountRepository) private readonly repository: ServiceAccountRepository,
    @Inject(ServiceAccountReader) private readonly reader: ServiceAccountReader,
    @Inject(SecretDeliverySecrets) private readonly secrets: SecretDeliverySecrets,
    @Inject(KeyReader) private readonly keys: KeyReader,
  ) {}

  async execute({ ctx, input }: CreateServiceAccount): Promise<ServiceAccountWritten> {
    const tenantId = tenantOf(ctx.caller);
    if (input.secretDelivery) requirePermission(ctx.caller, 'set-secret-delivery');
    const id = newId(ID_PREFIX.serviceAccount);
    const grant = routeGrant({ tenantId, environment: input.environment }, input.allowedScopes ?? []);
    const events = decideCreate({
      id,
      tenantId,
      name: input.name,
      environment: input.environment,
      description: input.description ?? null,
      intendedScope: input.intendedScope ?? null,
      businessOwner: input.businessOwner,
      technicalOwner: input.technicalOwner,
      allowedScopes: grant.apply,
      boundaries: input.boundaries ?? [],
      allowedCidrs: input.allowedCidrs ?? [],
      abuseDetection: input.abuseDetection ?? true,
      rotationPolicy: input.rotationPolicy ?? null,
      secretDelivery: input.secretDelivery ?? null,
    });
    await this.assertWithinCallerReach(ctx, input);
    if (input.secretDelivery) await this.secrets.checkUrl(input.secretDelivery.url);
    if (await this.reader.nameTaken(tenantId, input.environment, input.name)) {
      throw new Conflict(`a service account named ${input.name} exists already in ${input.environment}`);
    }
    const issued = input.secretDelivery ? this.secrets.issue(tenantId, id) : null;
    await this.repository.append(ctx, id, 0, events, input.reason, [], issued?.store);
    return { id, signingSecret: issued?.signingSecret ?? null };
  }

  /**
   * A key making an account sets its ceiling, so it may set one only within its own reach
   * (@keyward/keys delegation): its environment, its own non-keyward scopes, its boundaries and
   * addresses. Otherwise the account's next key would reach further than the key that made it.
   */
  private async assertWithinCallerReach(ctx: CommandContext, input: CreateServiceAccountInput) {
    if (ctx.caller.kind !== 'service-account') return;
    const holder = await this.keys.keyReach(ctx.caller);
    // Every scope asked for, including any a gate would hold for approval: a key asks for none it lacks.
    assertWithinReach(
      holder,
      {
        environment: input.environment,
        scopes: input.allowedScopes ?? [],
        boundaries: input.boundaries ?? [],
        cidrs: [input.allowedCidrs ?? []],
        endsAt: null,
      },
      'an account',
    );
  }
}

@CommandHandler(UpdateServiceAccount)
export class UpdateServiceAccountHandler implements ICommandHandler<
  UpdateServiceAccount,
  ServiceAccountWritten
> {
  constructor(
    @Inject(ServiceAccountRepository) private readonly repository: ServiceAccountRepository,
    @Inject(ServiceAccountReader) private readonly reader: ServiceAccountReader,
    @Inject(SecretDeliverySecrets) private readonly secrets: SecretDeliverySecrets,
  ) {}

  async execute({
    ctx,
    id,
    changes,
    reason,
    expectedVersion,
  }: UpdateServiceAccount): Promise<ServiceAccountWritten> {
    if (changes.secretDelivery) requirePermission(ctx.caller, 'set-secret-delivery');
    const state = await this.repository.load(ctx, id);
    assertVersion(state, expectedVersion);
    let events = decideUpdate(state, changes);
    const effective = events.find((e) => e.type === 'ServiceAccountUpdated')?.data.changes ?? {};
    if (ceilingWidenings(state, effective).length) requirePermission(ctx.caller, 'widen-ceiling');
    const delivery = changes.secretDelivery;
    if (delivery) {
      await this.secrets.checkUrl(delivery.url);
      events = recordingSecretDelivery(events, delivery);
    }
    const renamed = events.find((e) => e.type === 'ServiceAccountUpdated')?.data.changes.name;
    if (renamed && (await this.reader.nameTaken(state.tenantId, state.environment, renamed, state.id))) {
      throw new Conflict(`a service account named ${renamed} exists already in ${state.environment}`);
    }
    // Setting secretDelivery replaces the secret; clearing it removes the secret.
    const issued = delivery ? this.secrets.issue(state.tenantId, id) : null;
    const guard = issued?.store ?? (delivery === null ? this.secrets.remove(id) : undefined);
    await this.repository.append(ctx, id, state.version, events, reason, [], guard);
    return { id, signingSecret: issued?.signingSecret ?? null };
  }
}

const LIFECYCLE: Record<
  ChangeServiceAccountStatus['action'],
  (state: ServiceAccount) => ServiceAccountEvent[]
> = {
  disable: decideDisable,
  enable: decideEnable,
  delete: decideDelete,
};

@CommandHandler(ChangeServiceAccountStatus)
export class ChangeServiceAccountStatusHandler implements ICommandHandler<
  ChangeServiceAccountStatus,
  string
> {
  constructor(
    @Inject(ServiceAccountRepository) private readonly repository: ServiceAccountRepository,
    @Inject(AccountKeys) private readonly keys: AccountKeys,
  ) {}

  async execute({ ctx, id, action, reason, expectedVersion }: ChangeServiceAccountStatus): Promise<string> {
    const state = await this.repository.load(ctx, id);
    assertVersion(state, expectedVersion);
    const events = LIFECYCLE[action](state);
    // Deleting revokes every live key in the same commit; disabling needs no key event, since
    // verification reads the account's status with the key.
    const also = action === 'delete' ? await this.keys.revocationsOnDelete(state.tenantId, id) : [];
    await this.repository.append(ctx, id, state.version, events, reason, also);
    return id;
  }
}

@CommandHandler(GrantScopes)
export class GrantScopesHandler implements ICommandHandler<GrantScopes, string> {
  constructor(@Inject(ServiceAccountRepository) private readonly repository: ServiceAccountRepository) {}

  async execute({ ctx, id, scopes, reason, expectedVersion }: GrantScopes): Promise<string> {
    requirePermission(ctx.caller, 'widen-ceiling');
    const state = await this.repository.load(ctx, id);
    assertVersion(state, expectedVersion);
    const grant = routeGrant(state, scopes);
    await this.repository.append(ctx, id, state.version, decideGrantScopes(state, grant.apply), reason);
    return id;
  }
}

@CommandHandler(RevokeScope)
export class RevokeScopeHandler implements ICommandHandler<RevokeScope, string> {
  constructor(
    @Inject(ServiceAccountRepository) private readonly repository: ServiceAccountRepository,
    @Inject(AccountKeys) private readonly keys: AccountKeys,
  ) {}

  async execute({ ctx, id, scope, reason, expectedVersion }: RevokeScope): Promise<string> {
    const state = await this.repository.load(ctx, id);
    assertVersion(state, expectedVersion);
    const events = decideRevokeScope(state, scope);
    const ceiling = state.allowedScopes.filter((s) => s !== scope);
    const also = await this.keys.narrowingsTo(state.tenantId, id, ceiling);
    await this.repository.append(ctx, id, state.version, events, reason, also);
    return id;
  }
}

export const serviceAccountHandlers = [
  CreateServiceAccountHandler,
  UpdateServiceAccountHandler,
  ChangeServiceAccountStatusHandler,
  GrantScopesHandler,
  RevokeScopeHandler,
];
