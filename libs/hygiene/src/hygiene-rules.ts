import { rotationStage, type RotationPolicy } from '@keyward/keys';
import type { SignalStatus, SignalType } from '@keyward/signals';

/**
 * The hygiene sweep's decisions, pure: what to do about a key past its rotation age, given the
 * signals it already had. The sweep's queries find the candidates; these say what each one gets.
 */

/**
 * A scheduled rotation whose key has not changed for this long is taken to have died mid-way (a
 * worker killed between issuing the replacement and confirming its delivery). Delivery attempts
 * end within a few minutes (see the rotation job), so this never cuts a living one short.
 */
export const STALE_ROTATION_MS = 15 * 60 * 1000;

/** A signal the subject had, of any status: hygiene signals are raised once per episode. */
export interface PastSignal {
  type: SignalType;
  status: SignalStatus;
}

export interface RotationCandidate {
  keyId: string;
  tenantId: string;
  serviceAccountId: string;
  version: number;
  prefix: string;
  createdAt: Date;
  /** When the key last changed: how old a scheduled rotation in progress is. */
  updatedAt: Date;
  pendingReplacement: string | null;
  policy: RotationPolicy;
  secretDeliveryUrl: string | null;
}

export interface RotationActions {
  /** Rotate it now, by the worker, delivering the secret to the account's secretDelivery URL. */
  autoRotate: boolean;
  raise: ('ROTATION_DUE' | 'ROTATION_OVERDUE')[];
}

/**
 * A key due or overdue for rotation. With autoRotate and a secretDelivery URL the worker rotates
 * it, unless the last attempt failed and nobody has looked at it yet (an open ROTATION_FAILED):
 * then a person is told, as for accounts without autoRotate. A key past maxKeyAgeDays is
 * overdue whatever else happens. Each signal is raised once in the key's life.
 */
export function rotationActions(
  key: RotationCandidate,
  past: readonly PastSignal[],
  now: Date,
): RotationActions {
  const stage = rotationStage(key.createdAt, key.policy, now);
  if (stage === 'fresh') return { autoRotate: false, raise: [] };
  const had = (type: SignalType) => past.some((s) => s.type === type);
  const failedOpen = past.some((s) => s.type === 'ROTATION_FAILED' && s.status !== 'resolved');
  const automatic = key.policy.autoRotate && key.secretDeliveryUrl !== null && !failedOpen;
  const inProgress =
    key.pendingReplacement !== null && now.getTime() - key.updatedAt.getTime() < STALE_ROTATION_MS;
  const raise: RotationActions['raise'] = [];
  if (!automatic && stage === 'due' && !had('ROTATION_DUE')) raise.push('ROTATION_DUE');
  if (stage === 'overdue' && !had('ROTATION_OVERDUE')) raise.push('ROTATION_OVERDUE');
  return { autoRotate: automatic && !inProgress, raise };
}
