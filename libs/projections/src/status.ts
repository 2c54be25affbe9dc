import { sql } from 'kysely';
import type { Db } from '@keyward/db';
import { inlineProjections } from './inline-projections';

export interface ProjectionStatus {
  name: string;
  /** Inline projections are written in the append's own transaction. */
  kind: 'inline';
  tables: string[];
  rows: number;
  /** The newest committed event's position: an inline projection has applied it by definition. */
  checkpoint: string | null;
  /** Events committed but not yet in the read model: 0 for an inline projection. */
  lag: number;
  /** The last completed rebuild: when, and through which position. */
  lastRebuild: { at: string; position: string } | null;
}

/**
 * Where each projection stands. An inline projection cannot lag: its rows commit with the
 * events, so its checkpoint is the head of the feed. What can drift is a row damaged by hand,
 * which only a rebuild repairs; hence the last rebuild is shown too.
 */
export async function projectionStatus(db: Db): Promise<ProjectionStatus[]> {
  const head = await db
    .selectFrom('events')
    .select(sql<string | null>`max(position)::text`.as('position'))
    .executeTakeFirst();
  const rebuilds = await db.selectFrom('projection_checkpoints').selectAll().execute();
  const out: ProjectionStatus[] = [];
  for (const projection of inlineProjections) {
    let rows = 0;
    for (const table of projection.tables) {
      const counted = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(table)}`.execute(
        db,
      );
      rows += Number(counted.rows[0].n);
    }
    const rebuild = rebuilds.find((r) => r.name === `rebuild:${projection.name}`);
    out.push({
      name: projection.name,
      kind: 'inline',
      tables: [...projection.tables],
      rows,
      checkpoint: head?.position ?? null,
      lag: 0,
      lastRebuild: rebuild
        ? { at: rebuild.updated_at.toISOString(), position: String(rebuild.position) }
        : null,
    });
  }
  return out;
}
