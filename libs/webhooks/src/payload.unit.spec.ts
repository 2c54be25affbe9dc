import { OPAQUE_ID } from '@keyward/core';
import { buildPayload, deliveryId } from './payload';
import { checkEventNames, webhookEventName, WEBHOOK_EVENTS } from './webhook.events';

describe('deliveryId', () => {
  it('is stable for a (webhook, event) pair and differs for another pair', () => {
    const id = deliveryId('wh_aaaaaaaaaaaaaaaaaaaa', '2b7a5b0e-0000-4000-8000-000000000001');
    expect(deliveryId('wh_aaaaaaaaaaaaaaaaaaaa', '2b7a5b0e-0000-4000-8000-000000000001')).toBe(id);
    expect(deliveryId('wh_aaaaaaaaaaaaaaaaaaab', '2b7a5b0e-0000-4000-8000-000000000001')).not.toBe(id);
    expect(deliveryId('wh_aaaaaaaaaaaaaaaaaaaa', '2b7a5b0e-0000-4000-8000-000000000002')).not.toBe(id);
  });

  it('has the form of every id (so it pages by cursor) and no ":" (a BullMQ job id)', () => {
    const id = deliveryId('wh_x', 'e');
    expect(id).toMatch(/^whd_[0-9A-Za-z]{20}$/);
    expect(OPAQUE_ID.test(id)).toBe(true);
    expect(id).not.toContain(':');
  });
});

describe('buildPayload', () => {
  it('carries the delivery id, the name, the time, the tenant and the data with the stream id', () => {
    const payload = buildPayload('whd_1', 'key.revoked', {
      tenantId: 'acme',
      streamId: 'key_1',
      occurredAt: new Date('2026-03-01T09:00:00.000Z'),
      data: { cause: 'manual', emergency: false },
    });
    expect(payload).toEqual({
      id: 'whd_1',
      type: 'key.revoked',
      occurredAt: '2026-03-01T09:00:00.000Z',
      tenantId: 'acme',
      data: { cause: 'manual', emergency: false, streamId: 'key_1' },
    });
  });

  it('gives an event with no data an object holding the stream id', () => {
    const payload = buildPayload('whd_1', 'key.expired', {
      tenantId: 'acme',
      streamId: 'key_1',
      occurredAt: new Date(0),
      data: null,
    });
    expect(payload.data).toEqual({ streamId: 'key_1' });
  });
});

describe('event names', () => {
  it.each([
    ['KeyIssued', 'key.issued'],
    ['KeyRotated', 'key.rotated'],
    ['KeyRevoked', 'key.revoked'],
    ['KeyExpired', 'key.expired'],
    ['ServiceAccountCreated', 'account.created'],
    ['ServiceAccountDisabled', 'account.disabled'],
    ['ServiceAccountDeleted', 'account.deleted'],
    ['SignalRaised', 'signal.raised'],
  ])('maps %s to %s', (type, name) => {
    expect(webhookEventName(type)).toBe(name);
  });

  it('maps no other event (and no inherited property name)', () => {
    expect(webhookEventName('KeyScopesNarrowed')).toBeUndefined();
    expect(webhookEventName('WebhookRegistered')).toBeUndefined();
    expect(webhookEventName('toString')).toBeUndefined();
  });

  it('accepts every subscribable name, dropping repeats', () => {
    expect(checkEventNames([...WEBHOOK_EVENTS, 'key.revoked'])).toEqual(WEBHOOK_EVENTS);
  });

  it('refuses approval.requested as not available yet, and an unknown name, by position', () => {
    expect(() => checkEventNames(['key.revoked', 'approval.requested', 'key.eaten'])).toThrow(
      expect.objectContaining({
        code: 'VALIDATION_FAILED',
        errors: [
          { field: 'events.1', message: 'approval.requested is not available yet' },
          { field: 'events.2', message: expect.stringContaining('must be one of key.issued') },
        ],
      }),
    );
  });
});
