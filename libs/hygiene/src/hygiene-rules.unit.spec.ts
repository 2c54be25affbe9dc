import { rotationActions, STALE_ROTATION_MS, type PastSignal, type RotationCandidate } from './hygiene-rules';

const DAY = 24 * 3600 * 1000;
const T0 = new Date('2026-03-01T09:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

function candidate(overrides: Partial<RotationCandidate> = {}): RotationCandidate {
  return {
    keyId: 'key_AAAAAAAAAAAAAAAAAAA1',
    tenantId: 'acme',
    serviceAccountId: 'sa_00000000000000000001',
    version: 1,
    prefix: 'kw_live_AAAAAAAAAAAAAAAAAAA1',
    createdAt: T0,
    updatedAt: T0,
    pendingReplacement: null,
    policy: { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: false },
    secretDeliveryUrl: null,
    ...overrides,
  };
}
const auto = {
  policy: { maxKeyAgeDays: 30, notifyBeforeDays: 7, autoRotate: true },
  secretDeliveryUrl: 'https://x.example/keys',
};

describe('rotationActions', () => {
  it('nothing before the due day; ROTATION_DUE from it; ROTATION_OVERDUE from maxKeyAgeDays', () => {
    expect(rotationActions(candidate(), [], at(23 * DAY - 1))).toEqual({ autoRotate: false, raise: [] });
    expect(rotationActions(candidate(), [], at(23 * DAY))).toEqual({
      autoRotate: false,
      raise: ['ROTATION_DUE'],
    });
    expect(rotationActions(candidate(), [], at(30 * DAY))).toEqual({
      autoRotate: false,
      raise: ['ROTATION_OVERDUE'],
    });
  });

  it('raises each once in the key life, whatever the earlier signal became', () => {
    const had: PastSignal[] = [
      { type: 'ROTATION_DUE', status: 'resolved' },
      { type: 'ROTATION_OVERDUE', status: 'acknowledged' },
    ];
    expect(rotationActions(candidate(), had, at(23 * DAY)).raise).toEqual([]);
    expect(rotationActions(candidate(), had, at(31 * DAY)).raise).toEqual([]);
  });

  it('auto-rotates instead of raising ROTATION_DUE, only with both autoRotate and a secretDelivery URL', () => {
    expect(rotationActions(candidate(auto), [], at(23 * DAY))).toEqual({ autoRotate: true, raise: [] });
    expect(rotationActions(candidate({ policy: auto.policy }), [], at(23 * DAY))).toEqual({
      autoRotate: false,
      raise: ['ROTATION_DUE'],
    });
    // Overdue is a fact even for an auto-rotating account (its rotations have not landed).
    expect(rotationActions(candidate(auto), [], at(30 * DAY))).toEqual({
      autoRotate: true,
      raise: ['ROTATION_OVERDUE'],
    });
  });

  it('tells a person instead while a failed automatic rotation is unresolved', () => {
    const failed: PastSignal[] = [{ type: 'ROTATION_FAILED', status: 'open' }];
    expect(rotationActions(candidate(auto), failed, at(23 * DAY))).toEqual({
      autoRotate: false,
      raise: ['ROTATION_DUE'],
    });
    const looked: PastSignal[] = [{ type: 'ROTATION_FAILED', status: 'resolved' }];
    expect(rotationActions(candidate(auto), looked, at(23 * DAY)).autoRotate).toBe(true);
  });

  it('leaves a rotation in flight alone until it is stale, then hands it on to be settled', () => {
    const inFlight = candidate({ ...auto, pendingReplacement: 'key_B', updatedAt: at(23 * DAY) });
    expect(rotationActions(inFlight, [], at(23 * DAY + STALE_ROTATION_MS - 1)).autoRotate).toBe(false);
    expect(rotationActions(inFlight, [], at(23 * DAY + STALE_ROTATION_MS)).autoRotate).toBe(true);
  });
});
