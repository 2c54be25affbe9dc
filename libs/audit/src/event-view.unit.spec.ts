import type { RecordedEvent } from '@keyward/event-store';
import { eventView, ndjsonLine } from './event-view';

const recorded: RecordedEvent = {
  position: 4711n,
  transactionId: 900n,
  eventId: '00000000-0000-4000-8000-000000000001',
  tenantId: 'acme',
  streamId: 'sa_0123456789ABCDEFGHIJ',
  streamType: 'service-account',
  streamVersion: 3,
  type: 'ServiceAccountDisabled',
  schemaVersion: 1,
  data: {},
  metadata: {
    actor: { type: 'operator', id: 'op_1', name: 'Ada', extra: 'not shown' } as never,
    reason: 'suspected misuse',
    correlationId: 'corr-1',
    requestId: 'req-1',
    sourceIp: '10.0.0.1',
  },
  occurredAt: new Date('2026-03-01T09:00:00.000Z'),
  chainSeq: 12n,
  prevHash: 'a'.repeat(64),
  hash: 'b'.repeat(64),
};

it("shows an event with exactly API.md's fields", () => {
  expect(eventView(recorded)).toStrictEqual({
    position: 4711,
    streamId: 'sa_0123456789ABCDEFGHIJ',
    version: 3,
    type: 'ServiceAccountDisabled',
    occurredAt: '2026-03-01T09:00:00.000Z',
    actor: { type: 'operator', id: 'op_1', name: 'Ada' },
    reason: 'suspected misuse',
    correlationId: 'corr-1',
    data: {},
  });
});

it('writes one NDJSON line per event', () => {
  const line = ndjsonLine(recorded);
  expect(line.endsWith('\n')).toBe(true);
  expect(line.indexOf('\n')).toBe(line.length - 1);
  expect(JSON.parse(line)).toEqual(eventView(recorded));
});
