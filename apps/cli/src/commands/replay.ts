import { Argument, InvalidArgumentError, Option, type Command } from 'commander';
import { SCOPE } from '@keyward/accounts';
import { NotFound } from '@keyward/core';
import {
  ReplayReader,
  resolveAsOf,
  type AccessAsOf,
  type AccountAsOf,
  type AttributedGrant,
  type KeyAsOf,
} from '@keyward/replay';
// Types only, erased at run time: the API's views carry Nest decorators, so the CLI renders its
// own, and these types hold the two to the same JSON shape (the test compares them field by field).
import type {
  AccessView,
  AccountStateView,
  GrantingEventView,
  KeyStateView,
} from '../../../api/src/replay/replay.view';
import { outputFor, table, type Output } from '../output';
import { actorCell } from './history';
import { cell, iso, parseInstant, requireTenant, tenantOption, withReadDb } from './read-db';

function asOfOption(): Option {
  return new Option(
    '--as-of <time>',
    'the time to answer for, with its zone (2026-03-01T09:00:00Z) or a date; default now. A later time is answered as now',
  ).argParser(parseInstant);
}

/**
 * The API's rule (resolveAsOf): no time means now, and a time after now is answered as now, since
 * history has nothing later. The answer names the time it stands for; a person is also told here.
 */
function answeredAsOf(out: Output, requested: Date | undefined): Date {
  const asOf = resolveAsOf(requested, new Date());
  if (requested && asOf.getTime() !== requested.getTime()) {
    out.note(`${requested.toISOString()} is after now: answering as of now, ${asOf.toISOString()}`);
  }
  return asOf;
}

function scopeOf(value: string): string {
  if (value.length > 129 || !SCOPE.test(value)) {
    throw new InvalidArgumentError('expected a scope such as tickets:read or tickets:*, of [a-z0-9._-]');
  }
  return value;
}

/**
 * `state <account> --as-of <time>` and `access --scope <scope> --as-of <time>`: the CLI's
 * counterparts of GET /v1/service-accounts/{id}/state and GET /v1/access, folded from events alone.
 */
export function registerReplay(program: Command): void {
  program
    .command('state')
    .description('an account and its keys as they stood at a time, rebuilt from the events alone')
    .addArgument(new Argument('<account>', 'service account id (sa_...)'))
    .addOption(tenantOption())
    .addOption(asOfOption())
    .action(async (accountId: string, options: { tenant: string; asOf?: Date }, command: Command) => {
      const out = outputFor(command);
      const asOf = answeredAsOf(out, options.asOf);
      const state = await withReadDb(async (db) => {
        await requireTenant(db, options.tenant);
        return new ReplayReader(db).accountAsOf(options.tenant, accountId, asOf);
      });
      if (!state) {
        throw new NotFound(
          `no service account ${accountId} in tenant ${options.tenant} at ${asOf.toISOString()}`,
        );
      }
      const view = accountStateView(state);
      out.result(view, () => stateText(view));
    });

  program
    .command('access')
    .description(
      'every account and key that could have used a scope at a time, and the events that granted it',
    )
    .addOption(tenantOption())
    .addOption(
      new Option('--scope <scope>', 'the scope as a key presents it, such as tickets:read')
        .argParser(scopeOf)
        .makeOptionMandatory(),
    )
    .addOption(asOfOption())
    .action(async (options: { tenant: string; scope: string; asOf?: Date }, command: Command) => {
      const out = outputFor(command);
      const asOf = answeredAsOf(out, options.asOf);
      const items = await withReadDb(async (db) => {
        await requireTenant(db, options.tenant);
        return new ReplayReader(db).accessAsOf(options.tenant, options.scope, asOf);
      });
      const view = accessView(options.scope, asOf, items);
      out.result(view, () => accessText(options.tenant, view));
    });
}

// ---- the JSON answers: field for field what the API's replay.view.ts renders ----

function keyStateView({ key, status }: KeyAsOf): KeyStateView {
  return {
    id: key.id,
    serviceAccountId: key.serviceAccountId,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    boundaries: key.boundaries,
    allowedCidrs: key.allowedCidrs,
    rateLimit: key.rateLimit,
    environment: key.environment,
    status,
    createdAt: key.createdAt.toISOString(),
    expiresAt: key.expiresAt,
    replaces: key.replaces,
    replacedBy: key.replacedBy,
    graceEndsAt: key.graceEndsAt,
    revokedAt: iso(key.revokedAt),
    version: key.version,
  };
}

function accountStateView(state: AccountAsOf): AccountStateView {
  const { account } = state;
  return {
    id: account.id,
    tenantId: account.tenantId,
    name: account.name,
    environment: account.environment,
    description: account.description,
    intendedScope: account.intendedScope,
    businessOwner: account.businessOwner,
    technicalOwner: account.technicalOwner,
    allowedScopes: account.allowedScopes,
    boundaries: account.boundaries,
    allowedCidrs: account.allowedCidrs,
    abuseDetection: account.abuseDetection,
    rotationPolicy: account.rotationPolicy,
    // Only the URL, as the API shows it: whatever else delivery holds is not for answers.
    secretDelivery: account.secretDelivery ? { url: account.secretDelivery.url } : null,
    status: account.status,
    activeKeyCount: state.activeKeyCount,
    createdAt: account.createdAt.toISOString(),
    updatedAt: account.updatedAt.toISOString(),
    version: account.version,
    keys: state.keys.map(keyStateView),
    asOf: state.asOf.toISOString(),
  };
}

function grantingEventView(event: AttributedGrant): GrantingEventView {
  return {
    position: Number(event.position),
    streamId: event.streamId,
    version: event.version,
    type: event.type,
    occurredAt: event.occurredAt.toISOString(),
    actor: { type: event.actor.type, id: event.actor.id, name: event.actor.name },
    reason: event.reason,
    correlationId: event.correlationId,
    scopes: event.scopes,
  };
}

function accessView(scope: string, asOf: Date, items: readonly AccessAsOf<AttributedGrant>[]): AccessView {
  return {
    scope,
    asOf: asOf.toISOString(),
    items: items.map((item) => ({
      account: { id: item.account.id, name: item.account.name, environment: item.account.environment },
      key: {
        id: item.key.id,
        prefix: item.key.prefix,
        name: item.key.name,
        status: item.status,
        expiresAt: item.key.expiresAt,
        graceEndsAt: item.key.graceEndsAt,
      },
      matchingScopes: item.matchingScopes,
      grantedBy: {
        ceiling: item.grantedBy.ceiling.map(grantingEventView),
        key: item.grantedBy.key.map(grantingEventView),
      },
    })),
  };
}

// ---- the text a person reads ----

function stateText(view: AccountStateView): string[] {
  const summary: [string, string][] = [
    ['account', `${view.id} (${view.name})`],
    ['tenant', view.tenantId],
    ['as of', view.asOf],
    ['status', `${view.status} (version ${view.version})`],
    ['environment', view.environment],
    ['allowed scopes', cell(view.allowedScopes)],
    ['boundaries', cell(view.boundaries)],
    ['allowed cidrs', cell(view.allowedCidrs)],
    ['owners', `business ${view.businessOwner}, technical ${view.technicalOwner}`],
    ['created', view.createdAt],
    ['updated', view.updatedAt],
    ['live keys', `${view.activeKeyCount} of ${view.keys.length}`],
  ];
  const width = Math.max(...summary.map(([label]) => label.length));
  const lines = summary.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
  lines.push('');
  if (view.keys.length === 0) {
    lines.push('no keys issued by then');
  } else {
    lines.push(
      table(
        ['ID', 'PREFIX', 'NAME', 'STATUS', 'SCOPES', 'EXPIRES'],
        view.keys.map((k) => [k.id, k.prefix, k.name, k.status, cell(k.scopes), k.expiresAt]),
      ),
    );
  }
  return lines;
}

function grantsCell(label: string, grants: readonly GrantingEventView[]): string {
  return `${label}: ${grants.map((g) => `#${g.position} ${g.type} by ${actorCell(g.actor)}`).join(', ') || '-'}`;
}

function accessText(tenantId: string, view: AccessView): string[] {
  const count = view.items.length;
  const heading = `${count} ${count === 1 ? 'key' : 'keys'} in tenant ${tenantId} could use ${view.scope} as of ${view.asOf}`;
  if (count === 0) return [heading];
  return [
    heading,
    '',
    table(
      ['ACCOUNT', 'KEY', 'STATUS', 'MATCHING SCOPES', 'GRANTED BY'],
      view.items.map((item) => [
        `${item.account.name} (${item.account.id})`,
        `${item.key.name} (${item.key.id})`,
        item.key.status,
        cell(item.matchingScopes),
        `${grantsCell('ceiling', item.grantedBy.ceiling)}; ${grantsCell('key', item.grantedBy.key)}`,
      ]),
    ),
  ];
}
