import { Argument, type Command } from 'commander';
import { loadConfig } from '@keyward/config';
import { createDb } from '@keyward/db';
import { inlineProjections, projectionStatus, rebuildProjection } from '@keyward/projections';
import { outputFor, table } from '../output';
import { Progress } from '../progress';

/**
 * `projections rebuild [name]`: replays every event through one inline projection (or all) into
 * tables beside the live ones, then swaps them in, while the API keeps serving. PostgreSQL only.
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
    .action(async (name: string | undefined, _options: unknown, command: Command) => {
      const out = outputFor(command);
      const selected = inlineProjections.filter((p) => name === undefined || p.name === name);
      const config = loadConfig();
      const db = createDb(config.databaseUrl, { max: 1, applicationName: 'keyward-cli' });
      const results: { projection: string; events: number; ms: number }[] = [];
      try {
        for (const projection of selected) {
          out.note(`rebuilding ${projection.name} (${projection.tables.join(', ')})`);
          const started = Date.now();
          // A line per 10,000 events (or one line redrawn at a terminal) with the rate: a rebuild
          // of millions of events would otherwise print a line per batch of a thousand.
          const progress = new Progress(`  ${projection.name}`, 'events replayed');
          const result = await rebuildProjection(db, projection, (events) => progress.update(events));
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
