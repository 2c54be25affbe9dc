import { sql } from 'kysely';
import { EventStore } from '@keyward/event-store';
import { inlineProjections } from '@keyward/projections';
import { bearer, createTenant, startTestApi, type TestApi } from '../../../test/support/api';
import {
  DETECTOR_BUDGET_MS,
  RAISE_STAGE,
  USAGE_DETECTORS,
  evaluateUsage,
  FIRST_RUN_LOOKBACK_MINUTES,
  MAX_MINUTES_PER_RUN,
  type UsageDetector,
  type UsageEvaluationOptions,
} from './usage-evaluation';

/**
 * The usage evaluation against the real database: accounts and keys made through the API, usage
 * written into usage_minutes as the flush writes it, evaluated at a time the test chooses.
 * The checkpoint is one per database, so each test moves the clock on and places it itself.
 */
let api: TestApi;
let store: EventStore;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

beforeAll(async () => {
  api = await startTestApi();
  store = new EventStore(api.database.db, inlineProjections, api.clock);
});
afterAll(async () => {
  await api?.close();
});

interface Fixture {
  tenantId: string;
  accountId: string;
  keys: string[];
}

let seq = 0;
/** A tenant with one account and its keys, through the API. */
async function accountWithKeys(
  keys: number,
  options: { environment?: string; abuseDetection?: boolean } = {},
): Promise<Fixture> {
  seq += 1;
  const t = await createTenant(api, `eval-${seq}`);
  const admin = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: `acct-${seq}`,
      environment: options.environment ?? 'production',
      businessOwner: 'o',
      technicalOwner: 't',
      allowedScopes: ['a:read'],
      ...(options.abuseDetection === undefined ? {} : { abuseDetection: options.abuseDetection }),
    })
    .expect(201);
  const ids: string[] = [];
  for (let i = 0; i < keys; i++) {
    const key = await api.http
      .post(`/v1/service-accounts/${account.body.id}/keys`)
      .set(admin)
      .send({ name: `k${i}`, scopes: ['a:read'], expiresInDays: 60 })
      .expect(201);
    ids.push(key.body.id as string);
  }
  return { tenantId: t.tenantId, accountId: account.body.id as string, keys: ids };
}

interface Use {
  minute: number;
  code?: string;
  ip?: string;
  system?: string;
  count: number;
}

/** Usage of a key, as the flush writes it (added to a cell already there). */
async function seed(f: Fixture, keyId: string, uses: Use[]): Promise<void> {
  await api.database.db
    .insertInto('usage_minutes')
    .values(
      uses.map((u) => ({
        tenant_id: f.tenantId,
        minute: new Date(u.minute),
        key_id: keyId,
        service_account_id: f.accountId,
        code: u.code ?? 'ALLOWED',
        source_ip: u.ip ?? '10.0.0.1',
        system: u.system ?? '',
        count: u.count,
      })),
    )
    .onConflict((oc) =>
      oc
        .columns(['tenant_id', 'minute', 'key_id', 'code', 'source_ip', 'system'])
        .doUpdateSet({ count: sql`usage_minutes.count + excluded.count` }),
    )
    .execute();
}

/** `minutes` consecutive minutes of allowed use from 10.0.0.1, `count` calls each, from `first`. */
async function seedSeries(f: Fixture, keyId: string, first: number, minutes: number, count: number) {
  await sql`
    insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
    select ${f.tenantId}, m, ${keyId}, ${f.accountId}, 'ALLOWED', '10.0.0.1', '', ${count}
    from generate_series(${new Date(first)}::timestamptz, ${new Date(first + (minutes - 1) * MINUTE)}::timestamptz,
      interval '1 minute') as m`.execute(api.database.db);
}

async function setCheckpoint(lastMinute: number, parts = 0): Promise<void> {
  await sql`
    insert into usage_evaluation_checkpoints (name, last_minute, committed_parts, updated_at)
    values ('usage', ${new Date(lastMinute)}, ${parts}, now())
    on conflict (name) do update set last_minute = excluded.last_minute, committed_parts = excluded.committed_parts`.execute(
    api.database.db,
  );
}

async function checkpoint(): Promise<{ lastMinute: string; parts: number } | null> {
  const row = await api.database.db
    .selectFrom('usage_evaluation_checkpoints')
    .select(['last_minute', 'committed_parts'])
    .executeTakeFirst();
  return row ? { lastMinute: row.last_minute.toISOString(), parts: row.committed_parts } : null;
}

/**
 * A fresh stretch of time for one test: the clock two days on, 45 s into a minute. At that `now`
 * the latest settled minute is the one before; the checkpoint is placed so that exactly that
 * minute is evaluated next.
 */
async function freshWindow(): Promise<{ now: Date; minute: number }> {
  api.clock.advance(2 * DAY);
  const start = Math.floor(api.clock.now().getTime() / MINUTE) * MINUTE;
  api.clock.set(new Date(start + 45_000));
  const minute = start - MINUTE;
  await setCheckpoint(minute - MINUTE);
  return { now: api.clock.now(), minute };
}

const evaluate = (now: Date = api.clock.now(), options: UsageEvaluationOptions = {}) =>
  evaluateUsage(api.database.db, store, now, options);

async function skipRows() {
  const rows = await api.database.db
    .selectFrom('usage_evaluation_skips')
    .select(['minute', 'detector', 'reason', 'error'])
    .orderBy('minute')
    .orderBy('detector')
    .execute();
  return rows.map((r) => ({ ...r, minute: r.minute.toISOString() }));
}

async function signalsOf(tenantId: string) {
  const rows = await api.database.db
    .selectFrom('signals')
    .select(['type', 'key_id', 'service_account_id', 'severity', 'status', 'count', 'detail'])
    .where('tenant_id', '=', tenantId)
    .orderBy('type')
    .orderBy('key_id')
    .execute();
  return rows;
}

async function signalEvents(tenantId: string): Promise<Record<string, number>> {
  const rows = await sql<{ type: string; n: number }>`
    select type, count(*)::int as n from events
    where tenant_id = ${tenantId} and stream_type = 'signal' group by type`.execute(api.database.db);
  return Object.fromEntries(rows.rows.map((r) => [r.type, r.n]));
}

const iso = (ms: number) => new Date(ms).toISOString();

it('raises REVOKED_KEY_USED, EXPIRED_KEY_USED, ENVIRONMENT_MISMATCH, SCOPE_CREEP and DENIAL_BURST at their thresholds, not below', async () => {
  const f = await accountWithKeys(8);
  const { minute } = await freshWindow();
  const [revoked, expired, mismatch, creeping, almostCreeping, bursting, almostBursting, busy] = f.keys;
  await seed(f, revoked, [
    { minute, code: 'REVOKED', ip: '203.0.113.5', system: 'billing', count: 1 },
    { minute, count: 3 },
  ]);
  await seed(f, expired, [{ minute, code: 'EXPIRED', ip: '203.0.113.6', count: 2 }]);
  await seed(f, mismatch, [{ minute, code: 'ENVIRONMENT_MISMATCH', count: 1 }]);
  await seed(f, creeping, [
    { minute, code: 'INSUFFICIENT_SCOPE', count: 3 },
    { minute, code: 'OUT_OF_BOUNDARY', ip: '10.0.0.2', count: 2 },
  ]);
  await seed(f, almostCreeping, [
    { minute, code: 'INSUFFICIENT_SCOPE', count: 4 },
    // Revoked use in the minute before, which the checkpoint says was evaluated already.
    { minute: minute - MINUTE, code: 'REVOKED', count: 1 },
  ]);
  await seed(f, bursting, [
    { minute, code: 'IP_NOT_ALLOWED', ip: '198.51.100.1', count: 12 },
    { minute, code: 'RATE_LIMITED', count: 8 },
    { minute, count: 20 },
  ]);
  await seed(f, almostBursting, [{ minute, code: 'IP_NOT_ALLOWED', count: 19 }]);
  await seed(f, busy, [
    { minute, code: 'IP_NOT_ALLOWED', count: 20 },
    { minute, count: 21 },
  ]);
  // Unknown keys are counted with no key: they are about no key and raise nothing.
  await api.database.db
    .insertInto('usage_minutes')
    .values({
      tenant_id: f.tenantId,
      minute: new Date(minute),
      key_id: '',
      service_account_id: '',
      code: 'UNKNOWN',
      source_ip: '192.0.2.1',
      system: '',
      count: 500,
    })
    .execute();

  const result = await evaluate();

  expect(result).toEqual({
    minutes: 1,
    from: iso(minute),
    through: iso(minute),
    raised: 5,
    counted: 0,
    suppressed: 0,
    skipped: [],
    overtaken: false,
  });
  const signals = await signalsOf(f.tenantId);
  expect(signals.map((s) => [s.type, s.key_id])).toEqual(
    [
      ['DENIAL_BURST', bursting],
      ['ENVIRONMENT_MISMATCH', mismatch],
      ['EXPIRED_KEY_USED', expired],
      ['REVOKED_KEY_USED', revoked],
      ['SCOPE_CREEP', creeping],
    ].sort(),
  );
  for (const s of signals) {
    expect(s).toEqual(
      expect.objectContaining({
        service_account_id: f.accountId,
        severity: 'high',
        status: 'open',
        count: 1,
      }),
    );
    expect(s.detail.minute).toBe(iso(minute));
  }
  const detail = (type: string) => signals.find((s) => s.type === type)!.detail;
  expect(detail('REVOKED_KEY_USED')).toEqual({
    minute: iso(minute),
    denials: 1,
    sources: ['203.0.113.5'],
    systems: ['billing'],
  });
  expect(detail('EXPIRED_KEY_USED')).toEqual(
    expect.objectContaining({ denials: 2, sources: ['203.0.113.6'] }),
  );
  expect(detail('SCOPE_CREEP')).toEqual(
    expect.objectContaining({ insufficientScope: 3, outOfBoundary: 2, sources: ['10.0.0.1', '10.0.0.2'] }),
  );
  expect(detail('DENIAL_BURST')).toEqual(
    expect.objectContaining({ denials: 20, calls: 40, byCode: { IP_NOT_ALLOWED: 12, RATE_LIMITED: 8 } }),
  );
  expect(await signalEvents(f.tenantId)).toEqual({ SignalRaised: 5 });
  const actors = await sql<{ actor: string }>`
    select distinct metadata->'actor'->>'id' as actor from events
    where tenant_id = ${f.tenantId} and stream_type = 'signal'`.execute(api.database.db);
  expect(actors.rows).toEqual([{ actor: 'usage-evaluation' }]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });
});

it('raises VOLUME_SPIKE at ten times the average minute of the day before, with enough baseline', async () => {
  const f = await accountWithKeys(5, { environment: 'staging' });
  const { minute } = await freshWindow();
  const [spiking, almostSpiking, thinBaseline, justEnoughBaseline, quiet] = f.keys;
  // 144 minutes of 200 calls in the day before: 20 a minute on average, so a spike is 200.
  for (const key of [spiking, almostSpiking]) {
    await seedSeries(f, key, minute - 300 * MINUTE, 144, 200);
    // Outside the 24 hours: were it counted, the average would be far above any spike.
    await seed(f, key, [{ minute: minute - 25 * HOUR, count: 10_000_000 }]);
  }
  await seed(f, spiking, [{ minute, count: 200 }]);
  await seed(f, almostSpiking, [{ minute, count: 199 }]);
  // Used in 59 minutes of the day: no baseline to speak of, however big the minute.
  await seedSeries(f, thinBaseline, minute - 100 * MINUTE, 59, 1);
  await seed(f, thinBaseline, [{ minute, count: 5_000 }]);
  await seedSeries(f, justEnoughBaseline, minute - 100 * MINUTE, 60, 1);
  await seed(f, justEnoughBaseline, [{ minute, count: 100 }]);
  await seedSeries(f, quiet, minute - 100 * MINUTE, 60, 1);
  await seed(f, quiet, [{ minute, count: 99 }]);

  const result = await evaluate();

  expect(result.raised).toBe(2);
  const signals = await signalsOf(f.tenantId);
  expect(signals.map((s) => [s.type, s.key_id])).toEqual(
    [
      ['VOLUME_SPIKE', spiking],
      ['VOLUME_SPIKE', justEnoughBaseline],
    ].sort(),
  );
  const spike = signals.find((s) => s.key_id === spiking)!;
  expect(spike.severity).toBe('medium');
  expect(spike.detail).toEqual({
    minute: iso(minute),
    calls: 200,
    baselinePerMinute: 20,
    baselineActiveMinutes: 144,
  });
});

it('raises NEW_SOURCE for a source a used key has not been allowed from in 30 days, not for a young key', async () => {
  const f = await accountWithKeys(3);
  const { minute } = await freshWindow();
  const [veteran, settled, young] = f.keys;
  await seed(f, veteran, [
    { minute: minute - 2 * DAY, ip: '10.0.0.1', count: 5 },
    { minute: minute - 31 * DAY, ip: '10.0.0.3', count: 5 },
    // Refused from here: a refusal does not make a source known.
    { minute: minute - 3 * HOUR, code: 'IP_NOT_ALLOWED', ip: '10.0.0.4', count: 1 },
  ]);
  await seed(f, veteran, [
    { minute, ip: '10.0.0.1', count: 5 },
    { minute, ip: '10.0.0.2', count: 2 },
    { minute, ip: '10.0.0.3', count: 1 },
    { minute, ip: '10.0.0.4', count: 1 },
    // A refused call from a new source is not a use of the key from there.
    { minute, code: 'IP_NOT_ALLOWED', ip: '10.0.0.9', count: 1 },
    // Nor is a call that named no source.
    { minute, ip: '', count: 1 },
  ]);
  await seed(f, settled, [
    { minute: minute - 2 * DAY, ip: '10.0.0.1', count: 5 },
    { minute: minute - 2 * HOUR, ip: '10.0.0.2', count: 5 },
    { minute, ip: '10.0.0.1', count: 5 },
    { minute, ip: '10.0.0.2', count: 5 },
  ]);
  // First used three hours ago: its sources are still being found.
  await seed(f, young, [
    { minute: minute - 3 * HOUR, ip: '10.0.0.1', count: 5 },
    { minute, ip: '10.0.0.2', count: 5 },
  ]);

  await evaluate();

  const signals = await signalsOf(f.tenantId);
  expect(signals.map((s) => [s.type, s.key_id])).toEqual([['NEW_SOURCE', veteran]]);
  expect(signals[0].detail).toEqual({
    minute: iso(minute),
    sources: ['10.0.0.2', '10.0.0.3', '10.0.0.4'],
    newSources: 3,
    calls: 4,
  });
});

it('raises MANY_SOURCES for a key presented from ten sources within the hour, not nine', async () => {
  const f = await accountWithKeys(3, { environment: 'development' });
  const { minute } = await freshWindow();
  const [spread, almostSpread, spreadOverAnHour] = f.keys;
  const ips = (from: number, n: number) => Array.from({ length: n }, (_, i) => `10.1.0.${from + i}`);
  const uses = (at: number, list: string[], code = 'ALLOWED') =>
    list.map((ip) => ({ minute: at, ip, code, count: 1 }));
  // Five sources half an hour ago, five more now (one of them refused: still presented from there).
  await seed(f, spread, [
    ...uses(minute - 30 * MINUTE, ips(1, 5)),
    ...uses(minute, ips(6, 4)),
    ...uses(minute, ips(10, 1), 'IP_NOT_ALLOWED'),
  ]);
  await seed(f, almostSpread, [...uses(minute - 30 * MINUTE, ips(1, 4)), ...uses(minute, ips(6, 5))]);
  // The first five were used an hour before the minute: outside its hour.
  await seed(f, spreadOverAnHour, [...uses(minute - 60 * MINUTE, ips(1, 5)), ...uses(minute, ips(6, 5))]);

  await evaluate();

  const signals = await signalsOf(f.tenantId);
  expect(signals.map((s) => [s.type, s.key_id])).toEqual([['MANY_SOURCES', spread]]);
  expect(signals[0]).toEqual(expect.objectContaining({ severity: 'low', count: 1 }));
  expect(signals[0].detail).toEqual({
    minute: iso(minute),
    windowMinutes: 60,
    sources: 10,
    sample: ips(1, 10).sort(),
  });
});

it('evaluates a minute once: a second run changes nothing, a later minute counts the open signal again', async () => {
  const f = await accountWithKeys(1);
  const [key] = f.keys;
  const { now, minute } = await freshWindow();
  await seed(f, key, [{ minute, code: 'REVOKED', ip: '10.0.0.7', count: 3 }]);

  expect((await evaluate(now)).raised).toBe(1);
  const again = await evaluate(now);
  expect(again).toEqual(expect.objectContaining({ minutes: 0, raised: 0, counted: 0 }));
  expect(await signalEvents(f.tenantId)).toEqual({ SignalRaised: 1 });
  expect((await signalsOf(f.tenantId))[0].count).toBe(1);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });

  // The same condition a minute later: the open signal is counted, not repeated.
  await seed(f, key, [{ minute: minute + MINUTE, code: 'REVOKED', ip: '10.0.0.8', count: 1 }]);
  api.clock.advance(MINUTE);
  const later = await evaluate();
  expect(later).toEqual(expect.objectContaining({ minutes: 1, raised: 0, counted: 1 }));
  let signals = await signalsOf(f.tenantId);
  expect(signals).toHaveLength(1);
  expect(signals[0].count).toBe(2);
  expect(signals[0].detail).toEqual(
    expect.objectContaining({ minute: iso(minute + MINUTE), denials: 1, sources: ['10.0.0.8'] }),
  );
  expect(await signalEvents(f.tenantId)).toEqual({ SignalRaised: 1, SignalRecurred: 1 });

  // Three more minutes in one run: each minute it was seen in counts, as three runs would.
  await seed(
    f,
    key,
    [2, 3, 4].map((i) => ({ minute: minute + i * MINUTE, code: 'REVOKED', count: 1 })),
  );
  api.clock.advance(3 * MINUTE);
  expect(await evaluate()).toEqual(expect.objectContaining({ minutes: 3, counted: 3 }));
  signals = await signalsOf(f.tenantId);
  expect(signals).toHaveLength(1);
  expect(signals[0].count).toBe(5);
  expect(signals[0].detail.minute).toBe(iso(minute + 4 * MINUTE));
});

it('raises nothing for an account with abuseDetection off, and still moves the checkpoint', async () => {
  const off = await accountWithKeys(1, { abuseDetection: false });
  const on = await accountWithKeys(1);
  const { minute } = await freshWindow();
  for (const f of [off, on]) {
    await seed(f, f.keys[0], [
      { minute, code: 'REVOKED', count: 30 },
      { minute, code: 'INSUFFICIENT_SCOPE', count: 10 },
    ]);
  }

  const result = await evaluate();

  expect(result).toEqual(expect.objectContaining({ minutes: 1, raised: 3, suppressed: 3 }));
  expect(await signalsOf(off.tenantId)).toEqual([]);
  expect(await signalEvents(off.tenantId)).toEqual({});
  expect((await signalsOf(on.tenantId)).map((s) => s.type)).toEqual([
    'DENIAL_BURST',
    'REVOKED_KEY_USED',
    'SCOPE_CREEP',
  ]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });

  // Only suppressed sightings in a minute: no append, so the checkpoint moves on its own.
  await seed(off, off.keys[0], [{ minute: minute + MINUTE, code: 'REVOKED', count: 1 }]);
  api.clock.advance(MINUTE);
  expect(await evaluate()).toEqual(expect.objectContaining({ minutes: 1, raised: 0, suppressed: 1 }));
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute + MINUTE), parts: 0 });
  expect(await signalsOf(off.tenantId)).toEqual([]);
});

it('counts each sighting once when evaluations run at once', async () => {
  const f = await accountWithKeys(4);
  const { now, minute } = await freshWindow();
  for (const key of f.keys) await seed(f, key, [{ minute, code: 'REVOKED', count: 1 }]);

  const first = await Promise.all([1, 2, 3].map(() => evaluate(now)));
  expect(first.reduce((n, r) => n + r.raised, 0)).toBe(4);
  expect(first.reduce((n, r) => n + r.minutes, 0)).toBe(1);
  expect(await signalEvents(f.tenantId)).toEqual({ SignalRaised: 4 });
  expect((await signalsOf(f.tenantId)).map((s) => s.count)).toEqual([1, 1, 1, 1]);

  // Again with the signals open: each is counted once more, not once per evaluation.
  for (const key of f.keys) await seed(f, key, [{ minute: minute + MINUTE, code: 'REVOKED', count: 1 }]);
  api.clock.advance(MINUTE);
  const later = api.clock.now();
  const second = await Promise.all([1, 2, 3].map(() => evaluate(later)));
  expect(second.reduce((n, r) => n + r.counted, 0)).toBe(4);
  expect(await signalEvents(f.tenantId)).toEqual({ SignalRaised: 4, SignalRecurred: 4 });
  expect((await signalsOf(f.tenantId)).map((s) => s.count)).toEqual([2, 2, 2, 2]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute + MINUTE), parts: 0 });
});

it('does not evaluate a minute until 30 s after it ended', async () => {
  const f = await accountWithKeys(1);
  const [key] = f.keys;
  const { minute } = await freshWindow();
  const next = minute + MINUTE; // the minute that has just ended...
  await seed(f, key, [{ minute: next, code: 'REVOKED', count: 1 }]);
  await setCheckpoint(minute);

  // ...29 s ago.
  const early = await evaluate(new Date(next + MINUTE + 29_000));
  expect(early).toEqual(expect.objectContaining({ minutes: 0, raised: 0 }));
  expect(await signalsOf(f.tenantId)).toEqual([]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });

  const settled = await evaluate(new Date(next + MINUTE + 30_000));
  expect(settled).toEqual(expect.objectContaining({ minutes: 1, raised: 1 }));
  expect(await checkpoint()).toEqual({ lastMinute: iso(next), parts: 0 });
});

it('starts a first run a bounded lookback back, and evaluates a bounded number of minutes per run', async () => {
  const f = await accountWithKeys(3);
  const [tooOld, recent, later] = f.keys;
  const { now, minute: latest } = await freshWindow();
  await api.database.db.deleteFrom('usage_evaluation_checkpoints').execute();
  await seed(f, tooOld, [
    { minute: latest - FIRST_RUN_LOOKBACK_MINUTES * MINUTE, code: 'REVOKED', count: 1 },
  ]);
  await seed(f, recent, [
    { minute: latest - (FIRST_RUN_LOOKBACK_MINUTES - 1) * MINUTE, code: 'REVOKED', count: 1 },
  ]);

  const first = await evaluate(now);
  expect(first).toEqual(
    expect.objectContaining({
      minutes: FIRST_RUN_LOOKBACK_MINUTES,
      from: iso(latest - (FIRST_RUN_LOOKBACK_MINUTES - 1) * MINUTE),
      through: iso(latest),
      raised: 1,
    }),
  );
  expect((await signalsOf(f.tenantId)).map((s) => s.key_id)).toEqual([recent]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(latest), parts: 0 });

  // Far behind: 150 minutes to catch up, an hour per run.
  api.clock.advance(150 * MINUTE);
  await seed(f, later, [{ minute: latest + 80 * MINUTE, code: 'REVOKED', count: 1 }]);
  const runs = [await evaluate(), await evaluate(), await evaluate(), await evaluate()];
  expect(runs.map((r) => r.minutes)).toEqual([MAX_MINUTES_PER_RUN, MAX_MINUTES_PER_RUN, 30, 0]);
  expect(runs.map((r) => r.raised)).toEqual([0, 1, 0, 0]);
  expect(runs[0].through).toBe(iso(latest + 60 * MINUTE));
  expect(await checkpoint()).toEqual({ lastMinute: iso(latest + 150 * MINUTE), parts: 0 });
});

it('commits a minute with many signals in parts, and a resumed run raises only the parts not committed', async () => {
  // Signals need the account, not the key: ids of keys never issued keep this test fast.
  const f = await accountWithKeys(0);
  const { minute } = await freshWindow();
  const keyIds = (set: string) =>
    Array.from({ length: 300 }, (_, i) => `key_${set}${String(i).padStart(3, '0')}`);
  for (const id of keyIds('a')) await seed(f, id, [{ minute, code: 'REVOKED', count: 1 }]);

  expect(await evaluate()).toEqual(expect.objectContaining({ minutes: 1, raised: 300 }));
  expect(await signalEvents(f.tenantId)).toEqual({ SignalRaised: 300 });
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });

  // A run that died after the first part (250 sightings, in key order) of the next minute.
  const next = minute + MINUTE;
  for (const id of keyIds('b')) await seed(f, id, [{ minute: next, code: 'REVOKED', count: 1 }]);
  await setCheckpoint(minute, 1);
  api.clock.advance(MINUTE);
  expect(await evaluate()).toEqual(expect.objectContaining({ minutes: 1, raised: 50 }));
  const raised = await api.database.db
    .selectFrom('signals')
    .select('key_id')
    .where('tenant_id', '=', f.tenantId)
    .where('key_id', 'like', 'key_b%')
    .orderBy('key_id')
    .execute();
  expect(raised.map((r) => r.key_id)).toEqual(keyIds('b').slice(250));
  expect(await checkpoint()).toEqual({ lastMinute: iso(next), parts: 0 });
});

it('evaluates a minute of thousands of sources on one key, in a tenant with a long history, in bounded time', async () => {
  const f = await accountWithKeys(2);
  const [busy, revoked] = f.keys;
  const { minute } = await freshWindow();
  // The tenant's month: 150,000 rows of other keys. The busy key was first used 36 hours ago, so
  // it has history older than a day. Before the evaluation was bounded, whether it had history was
  // asked once per source of the minute, and answered from the primary key (tenant, minute, ...):
  // each time a scan of the tenant's month, and the evaluation ran past the statement timeout.
  await api.database.db.transaction().execute(async (trx) => {
    await sql`set local statement_timeout = 0`.execute(trx);
    await sql`
      insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
      select ${f.tenantId}, ${new Date(minute)}::timestamptz - (m * interval '1 minute'), 'key_history' || (s % 40),
        ${f.accountId}, 'ALLOWED', '10.2.' || (s % 200) || '.' || (m % 250), '', 1
      from generate_series(1, 30 * 24 * 60) as m, generate_series(0, 3) as s
      where m <= 37500`.execute(trx);
    await sql`
      insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
      select ${f.tenantId}, ${new Date(minute)}::timestamptz - (m * interval '1 minute'), ${busy}, ${f.accountId},
        'ALLOWED', '10.3.' || (m / 250) || '.' || (m % 250), '', 1
      from generate_series(1, 36 * 60) as m`.execute(trx);
    // The minute: 5,000 distinct sources on the busy key, the first 100 known to it...
    await sql`
      insert into usage_minutes (tenant_id, minute, key_id, service_account_id, code, source_ip, system, count)
      select ${f.tenantId}, ${new Date(minute)}, ${busy}, ${f.accountId}, 'ALLOWED',
        case when s <= 100 then '10.3.' || (s / 250) || '.' || (s % 250) else '172.16.' || (s / 250) || '.' || (s % 250) end,
        '', 1
      from generate_series(1, 5000) as s`.execute(trx);
    await sql`analyze usage_minutes`.execute(trx);
  });
  // ...and a revoked key used 2,400 times in the same minute.
  await seed(f, revoked, [
    { minute, code: 'REVOKED', ip: '192.0.2.1', count: 1200 },
    { minute, code: 'REVOKED', ip: '192.0.2.2', count: 1200 },
  ]);

  const started = Date.now();
  const result = await evaluate();
  const ms = Date.now() - started;

  // No detector ran out of its budget: each finished, and everything was raised.
  expect(result).toEqual(expect.objectContaining({ minutes: 1, raised: 5, skipped: [] }));
  expect(ms).toBeLessThan(DETECTOR_BUDGET_MS);
  const signals = await signalsOf(f.tenantId);
  expect(signals.map((s) => [s.type, s.key_id])).toEqual(
    [
      ['DENIAL_BURST', revoked],
      ['MANY_SOURCES', busy],
      ['NEW_SOURCE', busy],
      ['REVOKED_KEY_USED', revoked],
      ['VOLUME_SPIKE', busy],
    ].sort(),
  );
  const detail = (type: string) => signals.find((s) => s.type === type)!.detail;
  expect(detail('REVOKED_KEY_USED')).toEqual(expect.objectContaining({ denials: 2400 }));
  expect(detail('NEW_SOURCE')).toEqual(
    expect.objectContaining({ newSources: 4900, calls: 4900, sources: expect.any(Array) }),
  );
  expect((detail('NEW_SOURCE').sources as string[]).length).toBe(10);
  expect(detail('MANY_SOURCES')).toEqual(expect.objectContaining({ sources: 5000 }));
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });
});

/** A detector that throws, one whose SQL runs past its budget, and one that waits past it. */
const broken: UsageDetector = {
  name: 'broken',
  detect: async () => {
    throw new Error('broken detector');
  },
};
const slowSql: UsageDetector = {
  name: 'slow-sql',
  detect: async (trx) => {
    await sql`select pg_sleep(5)`.execute(trx);
    return [];
  },
};
const slowWait: UsageDetector = {
  name: 'slow-wait',
  detect: async () => {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    return [];
  },
};

it('a detector that throws or runs past its budget loses only its own sightings, visibly, and the checkpoint moves on', async () => {
  const f = await accountWithKeys(1);
  const [key] = f.keys;
  const { minute } = await freshWindow();
  await seed(f, key, [{ minute, code: 'REVOKED', ip: '10.0.0.7', count: 3 }]);
  await api.database.db.deleteFrom('usage_evaluation_skips').execute();

  const started = Date.now();
  const result = await evaluate(api.clock.now(), {
    detectors: [broken, slowSql, ...USAGE_DETECTORS, slowWait],
    detectorBudgetMs: 300,
  });
  // pg_sleep(5) was cut at 300 ms, and the 2 s wait given up at the budget and its grace.
  expect(Date.now() - started).toBeLessThan(4_000);

  expect(result).toEqual(expect.objectContaining({ minutes: 1, raised: 1 }));
  expect((await signalsOf(f.tenantId)).map((s) => [s.type, s.key_id])).toEqual([['REVOKED_KEY_USED', key]]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });
  const skipped = [
    { minute: iso(minute), detector: 'broken', reason: 'failed', error: 'broken detector' },
    {
      minute: iso(minute),
      detector: 'slow-sql',
      reason: 'timeout',
      error: 'canceling statement due to statement timeout',
    },
    {
      minute: iso(minute),
      detector: 'slow-wait',
      reason: 'timeout',
      error: 'detector slow-wait ran past its budget of 300 ms',
    },
  ];
  expect(result.skipped).toEqual(skipped);
  expect(await skipRows()).toEqual(skipped);

  // The next minute is evaluated as any other: the signal is counted again.
  await seed(f, key, [{ minute: minute + MINUTE, code: 'REVOKED', count: 1 }]);
  api.clock.advance(MINUTE);
  expect(await evaluate()).toEqual(expect.objectContaining({ minutes: 1, counted: 1, skipped: [] }));
  expect((await signalsOf(f.tenantId))[0].count).toBe(2);
});

it('skips a minute no detector can evaluate, records it, and evaluates the minutes after it', async () => {
  const f = await accountWithKeys(1);
  const [key] = f.keys;
  const { minute } = await freshWindow();
  await api.database.db.deleteFrom('usage_evaluation_skips').execute();
  await seed(f, key, [
    { minute, code: 'REVOKED', count: 1 },
    { minute: minute + MINUTE, code: 'REVOKED', count: 1 },
  ]);
  api.clock.advance(MINUTE);
  // Every detector fails on the first of the two minutes.
  const failingAt = (d: UsageDetector): UsageDetector => ({
    name: d.name,
    detect: async (trx, at) => {
      if (at.getTime() === minute) throw new Error(`${d.name} cannot read this minute`);
      return d.detect(trx, at);
    },
  });

  const result = await evaluate(api.clock.now(), { detectors: USAGE_DETECTORS.map(failingAt) });

  expect(result).toEqual(
    expect.objectContaining({ minutes: 2, from: iso(minute), through: iso(minute + MINUTE), raised: 1 }),
  );
  expect(result.skipped.map((s) => [s.minute, s.detector, s.reason])).toEqual(
    USAGE_DETECTORS.map((d) => [iso(minute), d.name, 'failed']),
  );
  expect((await skipRows()).map((s) => [s.minute, s.detector])).toEqual(
    USAGE_DETECTORS.map((d) => [iso(minute), d.name]).sort(),
  );
  const signals = await signalsOf(f.tenantId);
  expect(signals).toHaveLength(1);
  expect(signals[0].detail.minute).toBe(iso(minute + MINUTE));
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute + MINUTE), parts: 0 });
});

it('records sightings that cannot be raised as a skip, and moves on', async () => {
  const f = await accountWithKeys(1);
  const [key] = f.keys;
  const { minute } = await freshWindow();
  await api.database.db.deleteFrom('usage_evaluation_skips').execute();
  await seed(f, key, [{ minute, code: 'REVOKED', count: 1 }]);
  // A sighting whose detail cannot be stored as JSON.
  const unstorable: UsageDetector = {
    name: 'unstorable',
    detect: async () => [
      {
        tenantId: f.tenantId,
        type: 'NEW_SOURCE',
        serviceAccountId: f.accountId,
        keyId: key,
        detail: { n: 1n },
      },
    ],
  };

  const result = await evaluate(api.clock.now(), { detectors: [...USAGE_DETECTORS, unstorable] });

  expect(result.minutes).toBe(1);
  expect(result.skipped).toEqual([
    expect.objectContaining({ minute: iso(minute), detector: RAISE_STAGE, reason: 'failed' }),
  ]);
  expect((await skipRows()).map((s) => s.detector)).toEqual([RAISE_STAGE]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute), parts: 0 });
});

it('fails the run, skipping nothing, when the database cannot be reached', async () => {
  const f = await accountWithKeys(1);
  const [key] = f.keys;
  const { minute } = await freshWindow();
  await api.database.db.deleteFrom('usage_evaluation_skips').execute();
  await seed(f, key, [{ minute, code: 'REVOKED', count: 1 }]);
  const unreachable: UsageDetector = {
    name: 'unreachable',
    detect: async () => {
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    },
  };

  await expect(evaluate(api.clock.now(), { detectors: [...USAGE_DETECTORS, unreachable] })).rejects.toThrow(
    'ECONNRESET',
  );
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute - MINUTE), parts: 0 });
  expect(await skipRows()).toEqual([]);
  expect(await signalsOf(f.tenantId)).toEqual([]);

  // Back: the minute is evaluated in full.
  expect(await evaluate()).toEqual(expect.objectContaining({ minutes: 1, raised: 1, skipped: [] }));
});

it('starts no further minute once a run is past its budget, and always evaluates one', async () => {
  const f = await accountWithKeys(1);
  const [key] = f.keys;
  const { minute } = await freshWindow();
  await seed(
    f,
    key,
    [0, 1, 2].map((i) => ({ minute: minute + i * MINUTE, code: 'REVOKED', count: 1 })),
  );
  api.clock.advance(2 * MINUTE);

  const runs = [];
  for (let i = 0; i < 4; i++) runs.push(await evaluate(api.clock.now(), { runBudgetMs: 0 }));

  expect(runs.map((r) => r.minutes)).toEqual([1, 1, 1, 0]);
  expect(runs.map((r) => [r.raised, r.counted])).toEqual([
    [1, 0],
    [0, 1],
    [0, 1],
    [0, 0],
  ]);
  expect(await checkpoint()).toEqual({ lastMinute: iso(minute + 2 * MINUTE), parts: 0 });
});
