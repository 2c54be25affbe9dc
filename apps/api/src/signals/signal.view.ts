import type { SignalListing } from '@keyward/signals';

/** API.md "Usage, signals, reports": a signal as the feed shows it. */
export interface SignalView {
  id: string;
  type: string;
  severity: string;
  status: string;
  serviceAccount: { id: string; name: string | null; environment: string | null };
  keyId: string | null;
  detail: Record<string, unknown>;
  firstSeenAt: string;
  lastSeenAt: string;
  count: number;
  acknowledgedAt: string | null;
  acknowledgedNote: string | null;
  resolvedAt: string | null;
  resolvedNote: string | null;
  autoResolved: boolean;
  version: number;
}

export function signalView(s: SignalListing): SignalView {
  return {
    id: s.id,
    type: s.type,
    severity: s.severity,
    status: s.status,
    serviceAccount: s.serviceAccount,
    keyId: s.keyId,
    detail: s.detail,
    firstSeenAt: s.firstSeenAt.toISOString(),
    lastSeenAt: s.lastSeenAt.toISOString(),
    count: s.count,
    acknowledgedAt: s.acknowledgedAt?.toISOString() ?? null,
    acknowledgedNote: s.acknowledgedNote,
    resolvedAt: s.resolvedAt?.toISOString() ?? null,
    resolvedNote: s.resolvedNote,
    autoResolved: s.autoResolved,
    version: s.version,
  };
}
