import type { RotationPolicy } from '@keyward/db';

/**
 * An account's rotation policy (API.md "Service accounts"): a key is due for rotation
 * `notifyBeforeDays` before it reaches `maxKeyAgeDays`, and overdue from then on. The shape is
 * the read model's (the lowest layer); this is its one name above it.
 */
export type { RotationPolicy };

export const DAY_MS = 24 * 3600 * 1000;

/** When a key born at `createdAt` becomes due for rotation. */
export function rotationDueAt(createdAt: Date, policy: RotationPolicy): Date {
  return new Date(createdAt.getTime() + (policy.maxKeyAgeDays - policy.notifyBeforeDays) * DAY_MS);
}

/** When it reaches `maxKeyAgeDays`: overdue from this instant. */
export function rotationOverdueAt(createdAt: Date, policy: RotationPolicy): Date {
  return new Date(createdAt.getTime() + policy.maxKeyAgeDays * DAY_MS);
}

export type RotationStage = 'fresh' | 'due' | 'overdue';

export function rotationStage(createdAt: Date, policy: RotationPolicy, now: Date): RotationStage {
  if (now >= rotationOverdueAt(createdAt, policy)) return 'overdue';
  return now >= rotationDueAt(createdAt, policy) ? 'due' : 'fresh';
}

/**
 * How long the old key keeps working after a scheduled rotation's secret is delivered: the time
 * an integration needs to switch to the key it was handed, as the API's rotate example gives it.
 * Never past the old key's own expiry (decideConfirmRotation).
 */
export const SCHEDULED_ROTATION_GRACE_SECONDS = 24 * 3600;
