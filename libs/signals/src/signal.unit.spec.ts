import { Conflict } from '@keyward/core';
import {
  decideAcknowledge,
  decideRaise,
  decideResolve,
  foldSignal,
  severityFor,
  type RaiseSignal,
  type Signal,
  type SignalFact,
} from './signal';
import { SIGNAL_TYPES, type SignalEvent } from './signal.events';

/** Given events / when command / then events, for the signal aggregate. */
const T0 = new Date('2026-03-01T09:00:00.000Z');
const T1 = new Date('2026-03-01T09:05:00.000Z');

const raise: RaiseSignal = {
  tenantId: 't1',
  type: 'DENIAL_BURST',
  serviceAccountId: 'sa_1',
  keyId: 'key_1',
  detail: { denied: 40 },
};
const production = { environment: 'production' as const, abuseDetection: true };

function given(...events: [SignalEvent, Date][]): Signal {
  return foldSignal(events.map(([e, at]) => ({ ...e, occurredAt: at }) as SignalFact))!;
}

function raised(overrides: Partial<RaiseSignal> = {}): [SignalEvent, Date] {
  const decision = decideRaise(null, { ...raise, ...overrides }, production, 'sig_1');
  if (decision.outcome === 'suppressed') throw new Error('suppressed');
  return [decision.events[0], T0];
}

describe('decideRaise', () => {
  it('opens a new signal with the severity of the environment', () => {
    expect(decideRaise(null, raise, production, 'sig_new')).toEqual({
      outcome: 'raised',
      signalId: 'sig_new',
      expectedVersion: 0,
      events: [
        {
          type: 'SignalRaised',
          data: {
            id: 'sig_new',
            tenantId: 't1',
            type: 'DENIAL_BURST',
            severity: 'high',
            serviceAccountId: 'sa_1',
            keyId: 'key_1',
            detail: { denied: 40 },
          },
        },
      ],
    });
  });

  it('maps production, staging, development to high, medium, low', () => {
    expect([severityFor('production'), severityFor('staging'), severityFor('development')]).toEqual([
      'high',
      'medium',
      'low',
    ]);
  });

  it('counts an open signal instead of repeating it, at its version', () => {
    const open = given(raised());
    expect(decideRaise(open, { ...raise, detail: { denied: 12 } }, production, 'sig_unused')).toEqual({
      outcome: 'counted',
      signalId: 'sig_1',
      expectedVersion: 1,
      events: [{ type: 'SignalRecurred', data: { detail: { denied: 12 } } }],
    });
  });

  it('counts an acknowledged signal too: it is still unresolved', () => {
    const acknowledged = given(raised(), [{ type: 'SignalAcknowledged', data: { note: 'looking' } }, T1]);
    const decision = decideRaise(acknowledged, raise, production, 'sig_unused');
    expect(decision).toMatchObject({ outcome: 'counted', signalId: 'sig_1', expectedVersion: 2 });
  });

  it('opens a new signal after the last one was resolved', () => {
    const resolved = given(raised(), [{ type: 'SignalResolved', data: { note: null, auto: false } }, T1]);
    expect(decideRaise(resolved, raise, production, 'sig_2')).toMatchObject({
      outcome: 'raised',
      signalId: 'sig_2',
      expectedVersion: 0,
    });
  });

  it('raises no behavioural signal for an account with abuseDetection off', () => {
    const off = { environment: 'production' as const, abuseDetection: false };
    const behavioural = [
      'VOLUME_SPIKE',
      'DENIAL_BURST',
      'SCOPE_CREEP',
      'REVOKED_KEY_USED',
      'EXPIRED_KEY_USED',
      'ENVIRONMENT_MISMATCH',
      'NEW_SOURCE',
      'MANY_SOURCES',
    ] as const;
    for (const type of behavioural) {
      expect(decideRaise(null, { ...raise, type }, off, 'sig_x')).toEqual({ outcome: 'suppressed' });
    }
    const hygiene = SIGNAL_TYPES.filter((t) => !(behavioural as readonly string[]).includes(t));
    expect(hygiene).toEqual([
      'ROTATION_DUE',
      'ROTATION_OVERDUE',
      'ROTATION_FAILED',
      'UNUSED_KEY',
      'ORPHANED_ACCOUNT',
      'KEY_EXPOSED',
    ]);
    for (const type of hygiene) {
      expect(decideRaise(null, { ...raise, type }, off, 'sig_x')).toMatchObject({ outcome: 'raised' });
    }
  });

  it('refuses to count a signal of another subject (a caller bug)', () => {
    const open = given(raised());
    expect(() => decideRaise(open, { ...raise, keyId: 'key_2' }, production, 'sig_x')).toThrow(
      /not the open/,
    );
    expect(() => decideRaise(open, { ...raise, type: 'NEW_SOURCE' }, production, 'sig_x')).toThrow(
      /not the open/,
    );
  });
});

describe('evolveSignal', () => {
  it('counts recurrences and moves lastSeenAt, keeping firstSeenAt', () => {
    const s = given(
      raised(),
      [{ type: 'SignalRecurred', data: { detail: { denied: 3 } } }, T1],
      [{ type: 'SignalRecurred', data: { detail: { denied: 5 } } }, T1],
    );
    expect(s).toMatchObject({
      status: 'open',
      count: 3,
      firstSeenAt: T0,
      lastSeenAt: T1,
      detail: { denied: 5 },
      version: 3,
    });
  });

  it('keys an account-wide signal by the account', () => {
    const s = given(raised({ type: 'ORPHANED_ACCOUNT', keyId: null }));
    expect(s).toMatchObject({ keyId: null, serviceAccountId: 'sa_1', severity: 'high' });
  });
});

describe('decideAcknowledge and decideResolve', () => {
  const open = given(raised());
  const acknowledged = given(raised(), [{ type: 'SignalAcknowledged', data: { note: 'mine' } }, T1]);
  const resolved = given(raised(), [{ type: 'SignalResolved', data: { note: 'fixed', auto: false } }, T1]);

  it('acknowledges only an open signal', () => {
    expect(decideAcknowledge(open, 'mine')).toEqual([{ type: 'SignalAcknowledged', data: { note: 'mine' } }]);
    expect(() => decideAcknowledge(acknowledged, null)).toThrow(Conflict);
    expect(() => decideAcknowledge(resolved, null)).toThrow(Conflict);
  });

  it('resolves an open or acknowledged signal, once', () => {
    expect(decideResolve(open, 'fixed')).toEqual([
      { type: 'SignalResolved', data: { note: 'fixed', auto: false } },
    ]);
    expect(decideResolve(acknowledged, null, true)).toEqual([
      { type: 'SignalResolved', data: { note: null, auto: true } },
    ]);
    expect(() => decideResolve(resolved, null)).toThrow(Conflict);
  });

  it('records who-said-what in the state', () => {
    expect(acknowledged).toMatchObject({
      status: 'acknowledged',
      acknowledgedAt: T1,
      acknowledgedNote: 'mine',
    });
    expect(resolved).toMatchObject({
      status: 'resolved',
      resolvedAt: T1,
      resolvedNote: 'fixed',
      autoResolved: false,
    });
  });
});
