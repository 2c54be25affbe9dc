import { Argument, InvalidArgumentError, type Command } from 'commander';
import { HistoryReader, eventView, type EventView } from '@keyward/audit';
import { ID_PREFIX, NotFound } from '@keyward/core';
import type { RecordedEvent } from '@keyward/event-store';
import { outputFor, table } from '../output';
import { cell, requireTenant, tenantOption, withReadDb } from './read-db';

/** Events per read: a stream is read whole, a page at a time, so no one read is unbounded. */
const PAGE = 500;

type Subject = { kind: 'account'; id: string } | { kind: 'key'; id: string };

/** The id decides what is asked for; anything that is neither is a mistake on the command line. */
function subjectOf(id: string): Subject {
  if (id.startsWith(ID_PREFIX.serviceAccount)) return { kind: 'account', id };
  if (id.startsWith(ID_PREFIX.key)) return { kind: 'key', id };
  throw new InvalidArgumentError('expected a service account id (sa_...) or a key id (key_...)');
}

/** `history <account|key>`: the CLI's counterpart of GET /v1/service-accounts/{id}/history and /v1/keys/{keyId}/history. */
export function registerHistory(program: Command): void {
  program
    .command('history')
    .description("an account's or a key's events, oldest first")
    .addArgument(new Argument('<id>', 'service account id (sa_...) or key id (key_...)').argParser(subjectOf))
    .addOption(tenantOption())
    .action(async (subject: Subject, options: { tenant: string }, command: Command) => {
      const out = outputFor(command);
      const events = await withReadDb(async (db) => {
        await requireTenant(db, options.tenant);
        const reader = new HistoryReader(db);
        const all: RecordedEvent[] = [];
        let cursor: string | undefined;
        do {
          const page =
            subject.kind === 'account'
              ? await reader.accountHistory(options.tenant, subject.id, PAGE, cursor)
              : await reader.keyHistory(options.tenant, subject.id, PAGE, cursor);
          // Another tenant's id is as absent as a missing one, as in the API.
          if (!page) {
            throw new NotFound(
              `no ${subject.kind === 'account' ? 'service account' : 'key'} ${subject.id} in tenant ${options.tenant}`,
            );
          }
          all.push(...page.items);
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        return all;
      });
      const items = events.map(eventView);
      out.result({ items }, () => historyTable(items));
    });
}

function historyTable(items: readonly EventView[]): string {
  return table(
    ['POSITION', 'VERSION', 'TIME', 'TYPE', 'ACTOR', 'REASON', 'CORRELATION'],
    items.map((e) => [
      String(e.position),
      String(e.version),
      e.occurredAt,
      e.type,
      actorCell(e.actor),
      cell(e.reason),
      e.correlationId,
    ]),
  );
}

/** `operator:alice (op_...)`: the kind and the name a person recognises, and the id to search for. */
export function actorCell(actor: { type: string; id: string; name: string }): string {
  return `${actor.type}:${actor.name} (${actor.id})`;
}
