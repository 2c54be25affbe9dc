import { DomainError, ID_PREFIX, PolicyViolation, newId, type Clock } from '@keyward/core';
import type { Db } from '@keyward/db';
import {
  StreamVersionConflict,
  type EventMetadata,
  type EventStore,
  type StreamAppend,
} from '@keyward/event-store';
import type { RotateKeyJob } from '@keyward/jobs';
import {
  KEY_STREAM,
  KeyReader,
  SCHEDULED_ROTATION_GRACE_SECONDS,
  SERVICE_ACCOUNT_STREAM,
  assertRoomForKey,
  decideAbandonRotation,
  decideConfirmRotation,
  decideStartRotation,
  foldKey,
  isLive,
  issueKeySecret,
  liveKeyCount,
  rotationStage,
  type Key,
  type KeyAccount,
  type KeyEvent,
  type KeyFact,
} from '@keyward/keys';
import { raiseSignals } from '@keyward/signals';
import { postSigned } from '@keyward/webhooks';
import { STALE_ROTATION_MS } from './hygiene-rules';

export interface SecretDeliverySettings {
  /** The account's signing secret for secretDelivery, decrypted; null when it has none. */
  signingSecret(tenantId: string, serviceAccountId: string): Promise<string | null>;
  allowPrivate: boolean;
  /** Longest one POST may take. */
  timeoutMs: number;
  /** POSTs per rotation before it is given up (ROTATION_FAILED). */
  attempts: number;
  /** Wait before the second attempt; each later one waits twice as long. */
  retryDelayMs: number;
  /** How the job waits between attempts (tests pass one that does not sleep). */
  sleep?: (ms: number) => Promise<void>;
}

export type ScheduledRotationOutcome =
  | { status: 'rotated'; newKeyId: string; attempts: number }
  | { status: 'failed'; newKeyId: string | null; attempts: number; error: string }
  | { status: 'skipped'; reason: string };

const METADATA_ACTOR = { type: 'system', id: 'scheduled-rotation', name: 'scheduled rotation' } as const;

/**
 * One scheduled rotation with secret delivery (API.md "Service accounts", issue 5 point 3):
 *
 * 1. the replacement is issued, and the old key records `KeyRotationStarted` (it keeps working
 *    in full: no grace yet);
 * 2. the new secret is POSTed to the account's secretDelivery URL, signed like a webhook, with
 *    retries inside this run;
 * 3. on a 2xx the old key's grace starts (`KeyRotated`); if every attempt fails the replacement is
 *    revoked (`delivery-failed`), the old key records `KeyRotationAbandoned` and stays as it was,
 *    and ROTATION_FAILED is raised.
 *
 * The secret exists only in this function's memory: it is made in step 1 and dropped after step 2,
 * never written to Redis, PostgreSQL or a log. So a run that dies between 1 and 3 cannot be
 * resumed; the next run for the key (a retry, or the sweep once the rotation is stale) abandons
 * it (the old key still works) and starts afresh with a new secret.
 */
export async function rotateWithDelivery(
  db: Db,
  store: EventStore,
  job: RotateKeyJob,
  clock: Clock,
  settings: SecretDeliverySettings,
  correlationId: string,
): Promise<ScheduledRotationOutcome> {
  const metadata = (reason: string): EventMetadata => ({ actor: METADATA_ACTOR, reason, correlationId });
  let old = await loadKey(store, job);
  if (!old) return { status: 'skipped', reason: 'no such key' };

  if (old.pendingReplacement) {
    if (clock.now().getTime() - old.updatedAt.getTime() < STALE_ROTATION_MS) {
      return { status: 'skipped', reason: 'a rotation of this key is delivering its secret' };
    }
    const interrupted = 'interrupted before its delivery was confirmed';
    await settle(
      store,
      job,
      old.pendingReplacement,
      abandoning(interrupted, clock),
      metadata('secret delivery failed'),
    );
    old = (await loadKey(store, job))!;
  } else if (old.version !== job.version) {
    return { status: 'skipped', reason: 'the key changed since the sweep saw it' };
  }

  const account = await db
    .selectFrom('service_accounts')
    .selectAll()
    .where('tenant_id', '=', job.tenantId)
    .where('id', '=', old.serviceAccountId)
    .executeTakeFirst();
  const now = clock.now();
  if (!account || account.status !== 'active')
    return { status: 'skipped', reason: 'the account is not active' };
  const policy = account.rotation_policy;
  const url = account.secret_delivery_url;
  if (!policy?.autoRotate || !url)
    return { status: 'skipped', reason: 'the account does not rotate automatically' };
  if (!isLive(old, now) || old.replacedBy) return { status: 'skipped', reason: 'the key is not live' };
  if (rotationStage(old.createdAt, policy, now) === 'fresh') return { status: 'skipped', reason: 'not due' };
  const signingSecret = await settings.signingSecret(job.tenantId, account.id);
  if (!signingSecret)
    return { status: 'skipped', reason: 'the account has no secretDelivery signing secret' };

  // 1. Issue the replacement; the old key keeps working in full.
  const keyAccount: KeyAccount = {
    id: account.id,
    tenantId: account.tenant_id,
    status: 'active',
    environment: account.environment as KeyAccount['environment'],
    allowedScopes: account.allowed_scopes,
    boundaries: account.boundaries,
  };
  const newKeyId = newId(ID_PREFIX.key);
  const reader = new KeyReader(db);
  const [{ policy: tenantPolicy }, live] = await Promise.all([
    reader.policy(job.tenantId),
    reader.liveKeys(account.id, now),
  ]);
  const secret = issueKeySecret(newKeyId, keyAccount.environment);
  let rotation;
  try {
    rotation = decideStartRotation(old, newKeyId, {
      account: keyAccount,
      policy: tenantPolicy,
      liveKeys: live.length,
      now,
      secret,
    });
    await store.append(
      [
        {
          tenantId: job.tenantId,
          streamId: account.id,
          streamType: SERVICE_ACCOUNT_STREAM,
          expectedVersion: account.version,
          events: [],
        },
        keyAppend(old, old.version, rotation.old),
        keyAppend({ tenantId: job.tenantId, id: newKeyId }, 0, rotation.issued),
      ],
      metadata('scheduled rotation'),
      async (trx) => assertRoomForKey(await liveKeyCount(trx, account.id, now), tenantPolicy),
    );
  } catch (error) {
    // A rule the account's state breaks (maxActiveKeys, scopes since narrowed) will not mend by
    // retrying: tell a person. Anything else (a race, the database away) fails the job for a retry.
    if (!(error instanceof PolicyViolation)) throw error;
    await raiseFailed(db, store, old, null, error.message, 0, metadata);
    return { status: 'failed', newKeyId: null, attempts: 0, error: error.message };
  }
  const replacement = (await loadKey(store, { tenantId: job.tenantId, keyId: newKeyId }))!;

  // 2. Deliver, inside this run: the secret is in this closure and nowhere else.
  const body = JSON.stringify({
    type: 'key.rotated',
    serviceAccountId: account.id,
    keyId: newKeyId,
    prefix: secret.prefix,
    secret: secret.secret,
    replaces: old.id,
    expiresAt: replacement.expiresAt,
  });
  const delivery = await deliver(url, body, signingSecret, settings);

  // 3. Confirm, or abandon. Either is decided again on the keys as they are now if they changed
  // while the delivery ran (revoked by a person, say): throwing here would leave the rotation in
  // flight, and the run that later settles it would revoke a key the receiver already holds.
  if (delivery.ok) {
    await settle(
      store,
      job,
      newKeyId,
      (current) => [
        keyAppend(
          current,
          current.version,
          decideConfirmRotation(current, SCHEDULED_ROTATION_GRACE_SECONDS, clock.now()),
        ),
      ],
      metadata('secret delivered'),
    );
    return { status: 'rotated', newKeyId, attempts: delivery.attempts };
  }
  await settle(store, job, newKeyId, abandoning(delivery.error, clock), metadata('secret delivery failed'));
  await raiseFailed(db, store, old, newKeyId, delivery.error, delivery.attempts, metadata);
  return { status: 'failed', newKeyId, attempts: delivery.attempts, error: delivery.error };
}

/** Conflicts met while settling, read again each time; each means someone else committed. */
const SETTLE_ATTEMPTS = 10;

/** The old key as before, the undelivered replacement revoked (`delivery-failed`), in one commit. */
function abandoning(error: string, clock: Clock) {
  return (old: Key, replacement: Key): StreamAppend[] => {
    const abandoned = decideAbandonRotation(old, replacement, error, clock.now());
    return [
      keyAppend(old, old.version, abandoned.old),
      keyAppend(replacement, replacement.version, abandoned.issued),
    ];
  };
}

async function settle(
  store: EventStore,
  job: RotateKeyJob,
  newKeyId: string,
  decide: (old: Key, replacement: Key) => StreamAppend[],
  metadata: EventMetadata,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const old = (await loadKey(store, job))!;
    const replacement = (await loadKey(store, { tenantId: job.tenantId, keyId: newKeyId }))!;
    // Settled by another run already (it found this one stale): nothing left to do.
    if (old.pendingReplacement !== newKeyId) return;
    try {
      await store.append(decide(old, replacement), metadata);
      return;
    } catch (error) {
      if (!(error instanceof StreamVersionConflict) || attempt >= SETTLE_ATTEMPTS) throw error;
    }
  }
}

/**
 * POSTs with retries. Errors are described without the body (it holds the secret): a status
 * code, or the transport's own message, which names the address at most.
 */
async function deliver(
  url: string,
  body: string,
  signingSecret: string,
  settings: SecretDeliverySettings,
): Promise<{ ok: true; attempts: number } | { ok: false; attempts: number; error: string }> {
  const sleep = settings.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let error = 'no attempt was made';
  for (let attempt = 1; attempt <= settings.attempts; attempt++) {
    if (attempt > 1) await sleep(settings.retryDelayMs * 2 ** (attempt - 2));
    try {
      const status = await postSigned(url, body, signingSecret, settings);
      if (status >= 200 && status <= 299) return { ok: true, attempts: attempt };
      error = `the secretDelivery URL answered ${status}`;
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
      // The address policy refused the URL: no retry can make it allowed.
      if (caught instanceof DomainError) return { ok: false, attempts: attempt, error };
    }
  }
  return { ok: false, attempts: settings.attempts, error };
}

async function loadKey(
  store: EventStore,
  job: Pick<RotateKeyJob, 'tenantId' | 'keyId'>,
): Promise<Key | null> {
  const events = await store.readStream(job.keyId);
  const key = foldKey(
    events.map((e) => ({ type: e.type, data: e.data, occurredAt: e.occurredAt }) as KeyFact),
  );
  return key && key.tenantId === job.tenantId ? key : null;
}

function keyAppend(
  key: { tenantId: string; id: string },
  expectedVersion: number,
  events: KeyEvent[],
): StreamAppend {
  return { tenantId: key.tenantId, streamId: key.id, streamType: KEY_STREAM, expectedVersion, events };
}

async function raiseFailed(
  db: Db,
  store: EventStore,
  old: Key,
  newKeyId: string | null,
  error: string,
  attempts: number,
  metadata: (reason: string) => EventMetadata,
): Promise<void> {
  await raiseSignals(
    db,
    store,
    [
      {
        tenantId: old.tenantId,
        type: 'ROTATION_FAILED',
        serviceAccountId: old.serviceAccountId,
        keyId: old.id,
        detail: { prefix: old.prefix, revokedReplacement: newKeyId, attempts, error },
      },
    ],
    metadata('scheduled rotation failed'),
  );
}

/**
 * A rotation job that failed every attempt (the database away, a bug): never silent. The key's
 * account gets ROTATION_FAILED, as when the delivery itself fails (issue 5 point 7).
 */
export async function rotationJobFailed(
  db: Db,
  store: EventStore,
  job: RotateKeyJob,
  error: string,
  correlationId: string,
): Promise<void> {
  const old = await loadKey(store, job);
  if (!old) return;
  await raiseFailed(db, store, old, null, `the rotation job failed: ${error}`, 0, () => ({
    actor: METADATA_ACTOR,
    reason: 'scheduled rotation failed',
    correlationId,
  }));
}
