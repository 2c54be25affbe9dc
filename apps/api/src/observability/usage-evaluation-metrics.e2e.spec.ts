import { EventStore } from '@keyward/event-store';
import { inlineProjections } from '@keyward/projections';
import { USAGE_DETECTORS, evaluateUsage, type UsageDetector } from '@keyward/signals';
import { startTestApi, type TestApi } from '../../../../test/support/api';

/** /metrics reports how far behind the usage evaluation is, and what it skipped, from PostgreSQL. */
let api: TestApi;
let store: EventStore;

beforeAll(async () => {
  api = await startTestApi();
  store = new EventStore(api.database.db, inlineProjections, api.clock);
});
afterAll(async () => {
  await api?.close();
});

/** Every sample of one metric in a Prometheus text scrape, keyed by its labels in name order. */
function samples(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels = [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)]
      .map(([, key, value]) => `${key}=${value}`)
      .sort()
      .join(',');
    found.set(labels, Number(match[3]));
  }
  return found;
}

const scrape = async () => (await api.http.get('/metrics').expect(200)).text;

const broken: UsageDetector = {
  name: 'broken',
  detect: async () => {
    throw new Error('broken detector');
  },
};

it('shows the evaluation lag growing while no minute is evaluated, and counts skipped minutes by detector', async () => {
  // Before the first run: reachable, nothing evaluated, nothing skipped.
  let text = await scrape();
  expect(samples(text, 'keyward_usage_evaluation_metrics_up')).toEqual(new Map([['', 1]]));
  expect(samples(text, 'keyward_usage_evaluation_lag_seconds').size).toBe(0);
  expect(samples(text, 'keyward_usage_evaluation_skips_total').size).toBe(0);

  // 09:00:00: the first run evaluates the ten minutes through 08:58, one detector failing on each.
  const result = await evaluateUsage(api.database.db, store, api.clock.now(), {
    detectors: [...USAGE_DETECTORS, broken],
  });
  expect(result).toEqual(expect.objectContaining({ minutes: 10, through: '2026-03-01T08:58:00.000Z' }));

  text = await scrape();
  // 08:58 ended at 08:59, a minute ago.
  expect(samples(text, 'keyward_usage_evaluation_lag_seconds')).toEqual(new Map([['checkpoint=usage', 60]]));
  expect(samples(text, 'keyward_usage_evaluation_skips_total')).toEqual(
    new Map([['detector=broken,reason=failed', 10]]),
  );

  // Five minutes on without a run: the lag says so.
  api.clock.advance(5 * 60_000);
  text = await scrape();
  expect(samples(text, 'keyward_usage_evaluation_lag_seconds')).toEqual(new Map([['checkpoint=usage', 360]]));
  expect(samples(text, 'keyward_usage_evaluation_skips_total')).toEqual(
    new Map([['detector=broken,reason=failed', 10]]),
  );
});
