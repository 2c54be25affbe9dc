import type { Verification } from '@keyward/keys';

/** The dimensions usage is counted by, per minute: the primary key of `usage_minutes`. */
export interface UsageCell {
  minute: string;
  tenantId: string;
  keyId: string;
  serviceAccountId: string;
  code: string;
  sourceIp: string;
  system: string;
}

/** When a key was first and last used (allowed) within a tally, in epoch milliseconds. */
export interface KeyUse {
  tenantId: string;
  keyId: string;
  serviceAccountId: string;
  first: number;
  last: number;
}

export function minuteOf(at: Date): string {
  const minute = new Date(at.getTime());
  minute.setUTCSeconds(0, 0);
  return minute.toISOString();
}

/**
 * A cell as one string, for a Redis hash field: a JSON array, so no value (a `system` may hold
 * any text) can be mistaken for a separator. Absent values are ''.
 */
export function cellField(cell: UsageCell): string {
  return JSON.stringify([
    cell.minute,
    cell.tenantId,
    cell.keyId,
    cell.serviceAccountId,
    cell.code,
    cell.sourceIp,
    cell.system,
  ]);
}

export function parseCellField(field: string): UsageCell | null {
  try {
    const parts: unknown = JSON.parse(field);
    if (!Array.isArray(parts) || parts.length !== 7 || !parts.every((p) => typeof p === 'string'))
      return null;
    const [minute, tenantId, keyId, serviceAccountId, code, sourceIp, system] = parts as string[];
    if (Number.isNaN(Date.parse(minute))) return null;
    return { minute, tenantId, keyId, serviceAccountId, code, sourceIp, system };
  } catch {
    return null;
  }
}

/** A key's use as a sorted-set member: the score carries the time. */
export function keyUseMember(use: Pick<KeyUse, 'tenantId' | 'keyId' | 'serviceAccountId'>): string {
  return JSON.stringify([use.tenantId, use.keyId, use.serviceAccountId]);
}

export function parseKeyUseMember(
  member: string,
): Pick<KeyUse, 'tenantId' | 'keyId' | 'serviceAccountId'> | null {
  try {
    const parts: unknown = JSON.parse(member);
    if (!Array.isArray(parts) || parts.length !== 3 || !parts.every((p) => typeof p === 'string'))
      return null;
    const [tenantId, keyId, serviceAccountId] = parts as string[];
    return { tenantId, keyId, serviceAccountId };
  } catch {
    return null;
  }
}

/**
 * Verifications added up in memory: a count per cell, and each key's first and last allowed use.
 * What one API instance holds for at most a second before handing it to Redis.
 */
export class UsageTally {
  readonly counts = new Map<string, number>();
  readonly uses = new Map<string, KeyUse>();

  get empty(): boolean {
    return this.counts.size === 0 && this.uses.size === 0;
  }

  /** How many distinct cells and keys it holds (its memory, not its number of verifications). */
  get size(): number {
    return this.counts.size + this.uses.size;
  }

  add(v: Verification): void {
    const field = cellField({
      minute: minuteOf(v.at),
      tenantId: v.tenantId,
      keyId: v.keyId ?? '',
      serviceAccountId: v.serviceAccountId ?? '',
      code: v.code,
      sourceIp: v.sourceIp ?? '',
      system: v.system ?? '',
    });
    this.counts.set(field, (this.counts.get(field) ?? 0) + 1);
    // Only an allowed verification is a use: a revoked key tried by an attacker was not "used".
    if (v.code === 'ALLOWED' && v.keyId && v.serviceAccountId) {
      const at = v.at.getTime();
      this.addUse({
        tenantId: v.tenantId,
        keyId: v.keyId,
        serviceAccountId: v.serviceAccountId,
        first: at,
        last: at,
      });
    }
  }

  /** Takes another tally's counts into this one (a failed hand-off goes back into the buffer). */
  merge(other: UsageTally): void {
    for (const [field, count] of other.counts) this.counts.set(field, (this.counts.get(field) ?? 0) + count);
    for (const use of other.uses.values()) this.addUse(use);
  }

  private addUse(use: KeyUse): void {
    const known = this.uses.get(use.keyId);
    if (!known) {
      this.uses.set(use.keyId, { ...use });
      return;
    }
    known.first = Math.min(known.first, use.first);
    known.last = Math.max(known.last, use.last);
  }
}
