import { Command } from 'commander';
import { registerMigrate } from './commands/migrate';
import { registerOperators } from './commands/operators';
import { registerProjections } from './commands/projections';
import { registerTenants } from './commands/tenants';
import { reportError } from './errors';

export function buildProgram(): Command {
  const program = new Command('keyward')
    .description('Keyward operations: database migrations, tenants, operators and read-model rebuilds')
    .option('--json', 'print machine-readable JSON instead of text')
    .showHelpAfterError('(run with --help for usage)')
    // Subcommands created with .command() inherit this: usage errors come back to run() as exit code 2.
    .exitOverride();
  registerMigrate(program);
  registerTenants(program);
  registerOperators(program);
  registerProjections(program);
  return program;
}

/** Parses and runs one command line; answers the exit code (0 ok, 1 failed, 2 usage). */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    const json = program.opts<{ json?: boolean }>().json === true || argv.includes('--json');
    return reportError(error, json);
  }
}
