import { scheduleProblems, type ScheduleHeartbeat } from './schedule-heartbeat';
import { isOverdue, scheduleSpecs } from './schedules';

const at = (iso: string) => Date.parse(iso);

describe('isOverdue', () => {
  it('is overdue once three more runs came due after the one not taken (every 5 s: 15 s)', () => {
    const next = at('2026-03-01T09:00:05.000Z');
    expect(isOverdue('*/5 * * * * *', next, at('2026-03-01T09:00:05.000Z'))).toBe(false);
    expect(isOverdue('*/5 * * * * *', next, at('2026-03-01T09:00:19.999Z'))).toBe(false);
    expect(isOverdue('*/5 * * * * *', next, at('2026-03-01T09:00:20.000Z'))).toBe(false);
    expect(isOverdue('*/5 * * * * *', next, at('2026-03-01T09:00:20.001Z'))).toBe(true);
  });

  it('counts runs, not a fixed interval, for a pattern of uneven gaps', () => {
    // Seconds 0 and 10 of each minute (gaps of 10 s and 50 s; the same in every time zone): due at
    // :10, overdue only after 09:01:00, 09:01:10 and 09:02:00 came due, not 30 s after.
    const next = at('2026-03-01T09:00:10.000Z');
    expect(isOverdue('0,10 * * * * *', next, at('2026-03-01T09:00:40.001Z'))).toBe(false);
    expect(isOverdue('0,10 * * * * *', next, at('2026-03-01T09:02:00.000Z'))).toBe(false);
    expect(isOverdue('0,10 * * * * *', next, at('2026-03-01T09:02:00.001Z'))).toBe(true);
  });

  it('is never overdue before the run is due', () => {
    expect(isOverdue('* * * * *', at('2026-03-01T09:01:00.000Z'), at('2026-03-01T09:00:30.000Z'))).toBe(
      false,
    );
  });
});

describe('scheduleProblems', () => {
  const heartbeat = (statuses: ScheduleHeartbeat['schedules']): ScheduleHeartbeat => ({
    checkedAt: '2026-03-01T09:00:00.000Z',
    worker: 'host:1',
    schedules: statuses,
  });

  it('says nothing when every schedule runs', () => {
    expect(scheduleProblems(heartbeat([{ id: 'usage-flush', status: 'ok', next: 0 }]))).toEqual([]);
  });

  it('names each schedule missing or overdue, and says when no worker left a heartbeat', () => {
    expect(
      scheduleProblems(
        heartbeat([
          { id: 'usage-flush', status: 'missing' },
          { id: 'expiry-sweep', status: 'ok', next: 0 },
          { id: 'hygiene-sweep', status: 'overdue', next: at('2026-03-01T08:57:00.000Z') },
        ]),
      ),
    ).toEqual([
      'usage-flush: schedule missing from Redis',
      'hygiene-sweep: no scheduled run taken since 2026-03-01T08:57:00.000Z',
    ]);
    expect(scheduleProblems(undefined)).toEqual([
      'no schedule heartbeat from any worker: no worker is running, or Redis lost its data (and the schedules with it)',
    ]);
  });
});

it('declares the usage flush, the three sweeps and the evaluation, each from its cron setting', () => {
  const specs = scheduleSpecs({ usageFlushCron: 'u', sweepCron: 's', abuseCron: 'a' });
  expect(specs.map((spec) => [spec.id, spec.queue, spec.pattern])).toEqual([
    ['usage-flush', 'usage', 'u'],
    ['expiry-sweep', 'sweeps', 's'],
    ['hygiene-sweep', 'sweeps', 's'],
    ['requeue-deliveries', 'sweeps', 's'],
    ['usage-evaluation', 'signals', 'a'],
  ]);
});
