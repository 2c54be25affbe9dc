import type { Queue } from 'bullmq';
import { sql } from 'kysely';
import type { Db } from '@keyward/db';
import type { RecordedEvent } from '@keyward/event-store';
import { JOB, type DeliverWebhookJob } from '@keyward/jobs';
import { buildPayload, deliveryId } from './payload';
import { webhookEventName } from './webhook.events';

/**
 * After a commit: one `webhook_deliveries` row per (subscribed webhook, event), with the body it
 * will carry on every attempt. The id comes from the pair, so recording the same events again
 * inserts nothing. Answers the ids of every delivery these events call for (new or not), so the
 * caller can enqueue them all: a job id per delivery makes a repeat enqueue a no-op too, and a
 * delivery whose first enqueue failed gets its job on the next try.
 */
export async function recordDeliveries(db: Db, events: readonly RecordedEvent[]): Promise<string[]> {
  const named = events.flatMap((event) => {
    const name = webhookEventName(event.type);
    return name ? [{ event, name }] : [];
  });
  if (named.length === 0) return [];
  const tenants = [...new Set(named.map((n) => n.event.tenantId))];
  const hooks = await db
    .selectFrom('webhooks')
    .select(['id', 'tenant_id', 'events'])
    .where('tenant_id', 'in', tenants)
    // Only webhooks subscribed to at least one of these names (one array parameter, not a list).
    .where(sql<boolean>`events && ${[...new Set(named.map((n) => n.name))]}::text[]`)
    .execute();
  const rows = named.flatMap(({ event, name }) =>
    hooks
      .filter((hook) => hook.tenant_id === event.tenantId && hook.events.includes(name))
      .map((hook) => {
        const id = deliveryId(hook.id, event.eventId);
        return {
          id,
          tenant_id: event.tenantId,
          webhook_id: hook.id,
          event_id: event.eventId,
          event: name,
          body: JSON.stringify(buildPayload(id, name, event)),
          created_at: event.occurredAt,
        };
      }),
  );
  if (rows.length === 0) return [];
  await db
    .insertInto('webhook_deliveries')
    .values(rows)
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  return rows.map((row) => row.id);
}

/**
 * How long queuing a committed change's deliveries may take before it is given up and reported.
 * The producer connection fails at once while Redis is disconnected and drops a silent one
 * (producerConnection), but a queue that never connected waits for its first connection.
 */
export const QUEUE_DELIVERIES_TIMEOUT_MS = 2_000;

/**
 * Queues one job per delivery (job id = delivery id, so a repeat adds nothing). Throws when Redis
 * does not take them within QUEUE_DELIVERIES_TIMEOUT_MS; the deliveries stay pending, and the
 * lost-delivery sweep (requeuePendingDeliveries) queues them a minute later.
 */
export async function queueDeliveries(
  queue: Queue<DeliverWebhookJob>,
  ids: readonly string[],
): Promise<void> {
  if (ids.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`webhook jobs not queued within ${QUEUE_DELIVERIES_TIMEOUT_MS} ms`)),
      QUEUE_DELIVERIES_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([
      queue.addBulk(
        ids.map((deliveryId) => ({
          name: JOB.deliverWebhook,
          data: { deliveryId },
          opts: { jobId: deliveryId },
        })),
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The after-commit step of the worker's appends (the sweeps): record the deliveries the committed
 * events call for, then queue them. Throws when either fails; the caller logs it, and the change
 * stands. The API records them the same way but queues them off the answer (WebhookDispatch).
 */
export async function dispatchWebhooks(
  db: Db,
  queue: Queue<DeliverWebhookJob>,
  events: readonly RecordedEvent[],
): Promise<number> {
  const ids = await recordDeliveries(db, events);
  await queueDeliveries(queue, ids);
  return ids.length;
}

/** A delivery this old with no job has lost it: its enqueue failed after the commit (Redis away). */
export const ORPHANED_DELIVERY_AFTER_MS = 60_000;

/**
 * Queues again every delivery still pending a minute after it was recorded. A delivery whose job
 * is waiting or backing off is untouched (job id = delivery id, so adding it again adds nothing);
 * one whose enqueue was lost while Redis was away gets its job. Answers how many were offered.
 */
export async function requeuePendingDeliveries(
  db: Db,
  queue: Queue<DeliverWebhookJob>,
  now: Date,
  limit = 1_000,
): Promise<number> {
  const rows = await db
    .selectFrom('webhook_deliveries')
    .select('id')
    .where('status', '=', 'pending')
    .where('created_at', '<=', new Date(now.getTime() - ORPHANED_DELIVERY_AFTER_MS))
    .orderBy('created_at')
    .limit(limit)
    .execute();
  if (rows.length === 0) return 0;
  await queue.addBulk(
    rows.map(({ id }) => ({ name: JOB.deliverWebhook, data: { deliveryId: id }, opts: { jobId: id } })),
  );
  return rows.length;
}
