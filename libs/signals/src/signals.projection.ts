import type { Selectable, Transaction } from 'kysely';
import type { Database, SignalsTable } from '@keyward/db';
import type { InlineProjection, PendingEvent } from '@keyward/event-store';
import { evolveSignal, signalSubject, type Signal, type SignalFact } from './signal';
import {
  SIGNAL_STREAM,
  isSignalEvent,
  type SignalSeverity,
  type SignalStatus,
  type SignalType,
} from './signal.events';

export type SignalRow = Selectable<SignalsTable>;

/**
 * The `signals` read model, folded with the aggregate's own `evolveSignal`. Inline, so a raised
 * signal is listed the moment the command returns, and so the unique index `signals_unresolved`
 * refuses a second open signal for one subject inside the append that would create it.
 */
export const signalsProjection: InlineProjection = {
  name: 'signals',
  tables: ['signals'],
  async apply(trx: Transaction<Database>, events: readonly PendingEvent[]): Promise<void> {
    const facts = events.filter((e) => e.streamType === SIGNAL_STREAM && isSignalEvent(e));
    if (facts.length === 0) return;
    // One read and one upsert for the whole append: a sweep raises hundreds of signals at once.
    const ids = [...new Set(facts.map((e) => e.streamId))];
    const rows = await trx.selectFrom('signals').selectAll().where('id', 'in', ids).execute();
    const states = new Map<string, Signal | null>(rows.map((row) => [row.id, signalFromRow(row)]));
    for (const event of facts) {
      const fact = { type: event.type, data: event.data, occurredAt: event.occurredAt } as SignalFact;
      states.set(event.streamId, evolveSignal(states.get(event.streamId) ?? null, fact));
    }
    const changed = ids.map((id) => signalRow(states.get(id)!));
    await trx
      .insertInto('signals')
      .values(changed)
      .onConflict((oc) =>
        oc.column('id').doUpdateSet((eb) => ({
          status: eb.ref('excluded.status'),
          detail: eb.ref('excluded.detail'),
          count: eb.ref('excluded.count'),
          last_seen_at: eb.ref('excluded.last_seen_at'),
          acknowledged_at: eb.ref('excluded.acknowledged_at'),
          acknowledged_note: eb.ref('excluded.acknowledged_note'),
          resolved_at: eb.ref('excluded.resolved_at'),
          resolved_note: eb.ref('excluded.resolved_note'),
          auto_resolved: eb.ref('excluded.auto_resolved'),
          version: eb.ref('excluded.version'),
        })),
      )
      .execute();
  },
};

function signalRow(s: Signal) {
  return {
    id: s.id,
    tenant_id: s.tenantId,
    type: s.type,
    severity: s.severity,
    status: s.status,
    service_account_id: s.serviceAccountId,
    key_id: s.keyId,
    subject: signalSubject(s),
    detail: JSON.stringify(s.detail),
    count: s.count,
    first_seen_at: s.firstSeenAt,
    last_seen_at: s.lastSeenAt,
    acknowledged_at: s.acknowledgedAt,
    acknowledged_note: s.acknowledgedNote,
    resolved_at: s.resolvedAt,
    resolved_note: s.resolvedNote,
    auto_resolved: s.autoResolved,
    version: s.version,
  };
}

export function signalFromRow(row: SignalRow): Signal {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    type: row.type as SignalType,
    severity: row.severity as SignalSeverity,
    status: row.status as SignalStatus,
    serviceAccountId: row.service_account_id,
    keyId: row.key_id,
    detail: row.detail,
    count: row.count,
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    acknowledgedAt: row.acknowledged_at,
    acknowledgedNote: row.acknowledged_note,
    resolvedAt: row.resolved_at,
    resolvedNote: row.resolved_note,
    autoResolved: row.auto_resolved,
    version: row.version,
  };
}
