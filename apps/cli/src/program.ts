import { Command } from 'commander';
import { registerExport } from './commands/export';
import { registerHistory } from './commands/history';
import { registerIdentify } from './commands/identify';
import { registerIntegrity } from './commands/integrity';
import { registerMigrate } from './commands/migrate';
import { registerOperators } from './commands/operators';
import { registerProjections } from './commands/projections';
import { registerReplay } from './commands/replay';
import { registerTenants } from './commands/tenants';
import { reportError } from './errors';

export function buildProgram(): Command {
  const program = new Command('keyward')
    .description(
      'Keyward operations: database migrations, tenants, operators, read-model rebuilds, and history for incident response',
    )
    .option('--json', 'print machine-readable JSON instead of text')
    .showHelpAfterError('(run with --help for usage)')
    // Subcommands created with .command() inherit this: usage errors come back to run() as exit code 2.
    .exitOverride();
  registerMigrate(program);
  registerTenants(program);
  registerOperators(program);
  registerProjections(program);
  registerHistory(program);
  registerReplay(program);
  registerExport(program);
  registerIntegrity(program);
  registerIdentify(program);
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
