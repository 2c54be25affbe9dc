import { newId } from '@keyward/core';
import type { StreamAppend } from '@keyward/event-store';
import type { Exposure, ExposureFollowUp, Key } from '@keyward/keys';
import { decideRaise, signalSubject, type RaiseSignal } from './signal';
import { SIGNAL_ID_PREFIX } from './signal.events';
import { signalAppend } from './raise-signals';
import type { SignalReader } from './signal.reader';

/** API.md "Keys": an exposure report raises KEY_EXPOSED on the key. Never the raw key: where it was found. */
export function exposureRaise(key: Key, exposure: Exposure): RaiseSignal {
  return {
    tenantId: key.tenantId,
    type: 'KEY_EXPOSED',
    serviceAccountId: key.serviceAccountId,
    keyId: key.id,
    detail: { url: exposure.url, source: exposure.source, prefix: key.prefix },
  };
}

/**
 * Keys' ReportExposures handler appends what this answers together with the key's KeyExposed,
 * in one commit: the signal exists (as events, and in the read model) exactly when the exposure
 * does. Racing reports of one key already conflict on the key's own stream version, so the
 * expected version read here needs no retry of its own.
 */
export class ExposureSignals implements ExposureFollowUp {
  constructor(private readonly reader: SignalReader) {}

  async appendsFor(key: Key, exposure: Exposure): Promise<StreamAppend[]> {
    const raise = exposureRaise(key, exposure);
    const current = await this.reader.unresolved(raise.tenantId, raise.type, signalSubject(raise));
    // KEY_EXPOSED is a hygiene signal: abuseDetection does not silence it.
    const decision = decideRaise(
      current,
      raise,
      { environment: key.environment, abuseDetection: true },
      newId(SIGNAL_ID_PREFIX),
    );
    return decision.outcome === 'suppressed' ? [] : [signalAppend(raise.tenantId, decision)];
  }
}
