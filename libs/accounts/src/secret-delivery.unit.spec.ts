import { ManualClock, PolicyViolation, ValidationFailed } from '@keyward/core';
import { SecretBox } from '@keyward/webhooks';
import { SecretDeliverySecrets, recordingSecretDelivery } from './secret-delivery';
import type { ServiceAccountEvent } from './service-account.events';

const box = new SecretBox('a-test-only-encryption-key-of-32-characters');
const clock = new ManualClock('2026-03-01T09:00:00.000Z');

function secrets(allowPrivate: boolean, addresses: string[] = ['93.184.215.14']) {
  return new SecretDeliverySecrets(box, clock, {
    allowPrivate,
    resolve: async () => addresses.map((address) => ({ address, family: 4 })),
  });
}

describe('SecretDeliverySecrets.checkUrl', () => {
  it('accepts a public host and refuses a private one as secretDelivery.url (422)', async () => {
    await expect(secrets(false).checkUrl('https://vault.example/keys')).resolves.toBeUndefined();
    const refused = secrets(false, ['93.184.215.14', '10.0.0.7']).checkUrl('https://vault.example/keys');
    await expect(refused).rejects.toBeInstanceOf(PolicyViolation);
    await expect(refused).rejects.toMatchObject({ rule: 'secretDelivery.url' });
  });

  it('allows private addresses when configured, but never a bad form (400)', async () => {
    await expect(
      secrets(true, ['127.0.0.1']).checkUrl('http://vault.internal/keys'),
    ).resolves.toBeUndefined();
    const bad = secrets(true).checkUrl('https://user:pass@vault.example/keys');
    await expect(bad).rejects.toBeInstanceOf(ValidationFailed);
    await expect(bad).rejects.toMatchObject({ errors: [{ field: 'secretDelivery.url' }] });
  });
});

describe('SecretDeliverySecrets.issue', () => {
  it('makes a fresh secret each time, sealed to the account id', () => {
    const one = secrets(false).issue('acme', 'sa_1');
    const two = secrets(false).issue('acme', 'sa_1');
    expect(one.signingSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(one.signingSecret).not.toBe(two.signingSecret);
  });
});

describe('recordingSecretDelivery', () => {
  it('adds the setting to a change that would otherwise record nothing', () => {
    expect(recordingSecretDelivery([], { url: 'https://a/k' })).toEqual([
      { type: 'ServiceAccountUpdated', data: { changes: { secretDelivery: { url: 'https://a/k' } } } },
    ]);
  });

  it('adds it to the change that records other fields', () => {
    const events: ServiceAccountEvent[] = [
      { type: 'ServiceAccountUpdated', data: { changes: { description: 'd' } } },
    ];
    expect(recordingSecretDelivery(events, { url: 'https://a/k' })).toEqual([
      {
        type: 'ServiceAccountUpdated',
        data: { changes: { description: 'd', secretDelivery: { url: 'https://a/k' } } },
      },
    ]);
  });
});
