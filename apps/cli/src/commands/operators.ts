import { Option, type Command } from 'commander';
import { CommandBus } from '@nestjs/cqrs';
import { NotFound } from '@keyward/core';
import type { OperatorRow } from '@keyward/db';
import { ROLES, type Role } from '@keyward/auth';
import { CreateOperator, DeleteOperator, OperatorReader, type CreatedOperator } from '@keyward/tenants';
import { cliContext, withCliApp } from '../cli-app';
import { outputFor, table } from '../output';

/** Operators: people with a token in one tenant. The token is printed once, by `create`, and never again. */
export function registerOperators(program: Command): void {
  const operators = program.command('operators').description('manage operators and their tokens');

  operators
    .command('create')
    .description('create an operator and print its token (shown only this once)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--name <name>', 'the person the token is for')
    .addOption(new Option('--role <role>', 'role').choices(ROLES).makeOptionMandatory())
    .action(async (options: { tenant: string; name: string; role: Role }, command: Command) => {
      const out = outputFor(command);
      const created = await withCliApp((app) =>
        app
          .get(CommandBus)
          .execute<CreateOperator, CreatedOperator>(
            new CreateOperator(cliContext(options.tenant), options.tenant, options.name, options.role),
          ),
      );
      out.result(
        {
          id: created.id,
          tenantId: options.tenant,
          name: options.name,
          role: options.role,
          token: created.token,
        },
        () => [
          `created operator ${created.id} (${options.name}, ${options.role}) in tenant ${options.tenant}`,
          `token: ${created.token}`,
          'This token is shown only once and cannot be recovered; store it now.',
        ],
      );
    });

  operators
    .command('list')
    .description("list a tenant's active operators")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (options: { tenant: string }, command: Command) => {
      const out = outputFor(command);
      const rows = await withCliApp(async (app) => {
        const reader = app.get(OperatorReader);
        if (!(await reader.tenant(options.tenant))) throw new NotFound(`no tenant ${options.tenant}`);
        const all: OperatorRow[] = [];
        let cursor: string | undefined;
        do {
          const page = await reader.list(options.tenant, 200, cursor);
          all.push(...page.items);
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        return all;
      });
      // Never the token hash: the prefix is enough to tell tokens apart.
      const items = rows.map((r) => ({
        id: r.id,
        tenantId: r.tenant_id,
        name: r.name,
        role: r.role,
        tokenPrefix: r.token_prefix,
        createdAt: r.created_at.toISOString(),
      }));
      out.result({ items }, () =>
        items.length === 0
          ? `no operators in tenant ${options.tenant}`
          : table(
              ['ID', 'NAME', 'ROLE', 'PREFIX', 'CREATED'],
              items.map((i) => [i.id, i.name, i.role, i.tokenPrefix, i.createdAt]),
            ),
      );
    });

  operators
    .command('delete')
    .description('delete an operator; its token stops working at once')
    .argument('<id>', 'operator id (op_...)')
    .option('--tenant <tenant>', 'only if the operator is in this tenant')
    .option('--reason <reason>', 'why, kept with the event')
    .action(async (id: string, options: { tenant?: string; reason?: string }, command: Command) => {
      const out = outputFor(command);
      await withCliApp((app) =>
        app
          .get(CommandBus)
          .execute<DeleteOperator, string>(
            new DeleteOperator(
              cliContext(options.tenant ?? null),
              options.tenant,
              id,
              options.reason ?? null,
            ),
          ),
      );
      out.result({ id, deleted: true }, () => `deleted operator ${id}`);
    });
}
