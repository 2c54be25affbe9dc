import { Argument, InvalidArgumentError, Option, type Command } from 'commander';
import { SCOPE } from '@keyward/accounts';
import { NotFound } from '@keyward/core';
import { ReplayReader, resolveAsOf } from '@keyward/replay';
// The API's own mapping: plain functions with type-only imports, so the JSON is the same by
// construction and no Nest or Swagger loads here.
import { accessView, accountStateView } from '../../../api/src/replay/replay.mapping';
import type { AccessView, AccountStateView, GrantingEventView } from '../../../api/src/replay/replay.view';
import { outputFor, table, type Output } from '../output';
import { actorCell } from './history';
import { cell, parseInstant, requireTenant, tenantOption, withReadDb } from './read-db';

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
