import { Argument, type Command } from 'commander';
import { loadConfig } from '@keyward/config';
import { createDb } from '@keyward/db';
import { inlineProjections, projectionStatus, rebuildProjection } from '@keyward/projections';
import { outputFor, table } from '../output';
import { Progress } from '../progress';

/**
 * `projections rebuild [name] [--tenant <id>]`: replays every event through one inline projection
 * (or all) into tables beside the live ones, then swaps them in, while the API keeps serving;
 * with `--tenant`, only that tenant's rows from its own events. PostgreSQL only.
 * `projections status`: each projection's rows, checkpoint, lag and last rebuild.
 */
export function registerProjections(program: Command): void {
  const projections = program.command('projections').description('inline read models');

  projections
    .command('rebuild')
    .description('rebuild a read model (or all of them) from the events')
    .addArgument(
      new Argument('[name]', 'projection to rebuild; all when omitted').choices(
        inlineProjections.map((p) => p.name),
      ),
    )
    .option('--tenant <tenant>', "rebuild only this tenant's rows; every tenant's when omitted")
    .action(async (name: string | undefined, options: { tenant?: string }, command: Command) => {
      const out = outputFor(command);
      const selected = inlineProjections.filter((p) => name === undefined || p.name === name);
      const config = loadConfig();
      const db = createDb(config.databaseUrl, { max: 1, applicationName: 'keyward-cli' });
      const results: { projection: string; tenantId: string | null; events: number; ms: number }[] = [];
      try {
        for (const projection of selected) {
          const whose = options.tenant === undefined ? '' : ` of tenant ${options.tenant}`;
          out.note(`rebuilding ${projection.name}${whose} (${projection.tables.join(', ')})`);
          const started = Date.now();
          // A line per 10,000 events (or one line redrawn at a terminal) with the rate: a rebuild
          // of millions of events would otherwise print a line per batch of a thousand.
          const progress = new Progress(`  ${projection.name}`, 'events replayed');
          const result = await rebuildProjection(db, projection, (events) => progress.update(events), {
            tenantId: options.tenant,
          });
          progress.done(result.events);
          results.push({ ...result, ms: Date.now() - started });
        }
      } finally {
        await db.destroy();
      }
      out.result({ projections: results }, () =>
        table(
          ['PROJECTION', 'EVENTS', 'MS'],
          results.map((r) => [r.projection, String(r.events), String(r.ms)]),
        ),
      );
    });

  projections
    .command('status')
    .description("each read model's rows, checkpoint, lag and last rebuild")
    .action(async (_options: unknown, command: Command) => {
      const out = outputFor(command);
      const config = loadConfig();
      const db = createDb(config.databaseUrl, { max: 1, applicationName: 'keyward-cli' });
      try {
        const status = await projectionStatus(db);
        out.result({ projections: status }, () =>
          table(
            ['PROJECTION', 'KIND', 'ROWS', 'CHECKPOINT', 'LAG', 'LAST REBUILD'],
            status.map((s) => [
              s.name,
              s.kind,
              String(s.rows),
              s.checkpoint ?? '-',
              String(s.lag),
              s.lastRebuild ? `${s.lastRebuild.at} (through ${s.lastRebuild.position})` : 'never',
            ]),
          ),
        );
      } finally {
        await db.destroy();
      }
    });
}
