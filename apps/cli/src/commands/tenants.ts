import type { Command } from 'commander';
import { CommandBus } from '@nestjs/cqrs';
import { CreateTenant } from '@keyward/tenants';
import { cliContext, withCliApp } from '../cli-app';
import { outputFor } from '../output';

/** `tenants create`: the CLI's counterpart of `POST /v1/tenants`. */
export function registerTenants(program: Command): void {
  const tenants = program.command('tenants').description('manage tenants');

  tenants
    .command('create')
    .description('create a tenant')
    .requiredOption('--id <id>', 'tenant id: 3 to 40 of [a-z0-9-]')
    .requiredOption('--name <name>', 'display name')
    .action(async (options: { id: string; name: string }, command: Command) => {
      const out = outputFor(command);
      const id = await withCliApp((app) =>
        app
          .get(CommandBus)
          .execute<CreateTenant, string>(new CreateTenant(cliContext(null), options.id, options.name)),
      );
      out.result({ id, name: options.name }, () => `created tenant ${id} (${options.name})`);
    });
}
