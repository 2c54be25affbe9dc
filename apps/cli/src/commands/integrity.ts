import type { Command } from 'commander';
import { checkIntegrity, integrityView, type IntegrityView } from '@keyward/audit';
import { DomainError } from '@keyward/core';
import { outputFor } from '../output';
import { requireTenant, tenantOption, withReadDb } from './read-db';

/** The verdict is printed first; this only turns a broken chain into exit code 1 for scripts. */
class ChainBroken extends DomainError {
  readonly code = 'CHAIN_BROKEN';
}

/** `integrity`: the CLI's counterpart of GET /v1/audit/integrity. Exit 0 intact, 1 broken. */
export function registerIntegrity(program: Command): void {
  program
    .command('integrity')
    .description("check the tenant's hash chain of events; exit code 1 when it is broken")
    .addOption(tenantOption())
    .action(async (options: { tenant: string }, command: Command) => {
      const out = outputFor(command);
      const view = await withReadDb(async (db) => {
        await requireTenant(db, options.tenant);
        return integrityView(await checkIntegrity(db, options.tenant));
      });
      out.result(view, () => verdictText(options.tenant, view));
      if (!view.ok) throw new ChainBroken(brokenText(options.tenant, view));
    });
}

function verdictText(tenantId: string, view: IntegrityView): string {
  if (view.ok) return `hash chain of tenant ${tenantId} intact: ${events(view.checked)} checked`;
  if (view.brokenAt === null) {
    // No link failed, yet the chain head disagrees: events are missing, or the chain was rewritten.
    return `hash chain of tenant ${tenantId} BROKEN: its head does not match its ${events(view.checked)} (events deleted, or the chain rewritten)`;
  }
  return `hash chain of tenant ${tenantId} BROKEN at position ${view.brokenAt} (${events(view.checked)} checked): events from there on cannot be trusted`;
}

function brokenText(tenantId: string, view: IntegrityView): string {
  const where = view.brokenAt === null ? 'at its head' : `at position ${view.brokenAt}`;
  return `the hash chain of tenant ${tenantId} is broken ${where}`;
}

function events(n: number): string {
  return `${n} ${n === 1 ? 'event' : 'events'}`;
}
