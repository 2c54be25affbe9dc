import { Job, QueueEvents, type Queue } from 'bullmq';
import pino from 'pino';
import { JOB, QUEUES, QUEUE_STATES, projectionsQueue, type RebuildProjectionJob } from '@keyward/jobs';
import { closeRedis, producerConnection, workerConnection } from '@keyward/redis';
import { bearer, createTenant, startTestApi, type TestApi } from '../../../../test/support/api';
import { startWorker, type KeywardWorker } from '../../../worker/src/worker';
import { QUEUE_READ_TIMEOUT_MS } from './queue-metrics';

/** /metrics reports the BullMQ queues as a real worker leaves them, and answers without Redis. */
let api: TestApi;
let worker: KeywardWorker;
let events: QueueEvents;
let eventsConnection: ReturnType<typeof workerConnection>;
let producer: Queue<RebuildProjectionJob>;

beforeAll(async () => {
  api = await startTestApi();
  worker = await startWorker(api.config, pino({ level: 'silent' }));
  // QueueEvents blocks on a copy of the connection it is given; the original is ours to close.
  eventsConnection = workerConnection(api.config.redisUrl);
  events = new QueueEvents(QUEUES.projections, {
    connection: eventsConnection,
    prefix: api.config.redisPrefix,
  });
  await events.waitUntilReady();
  producer = projectionsQueue(producerConnection(api.config.redisUrl), api.config.redisPrefix);
});
afterAll(async () => {
  await producer.close();
  await events.close();
  await closeRedis(eventsConnection);
  await worker.close();
  await api.close();
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

// First: ioredis leaves a 2 s timer behind when a client that never connected is closed (its
// disconnectTimeout); run before the other test, it has expired by the time the file ends.
it('answers /metrics in bounded time without the queue series when Redis is unreachable', async () => {
  const down = await startTestApi({ REDIS_URL: 'redis://127.0.0.1:1' });
  try {
    for (let scrape = 0; scrape < 2; scrape++) {
      const started = Date.now();
      const res = await down.http.get('/metrics').expect(200);
      expect(Date.now() - started).toBeLessThan(QUEUE_READ_TIMEOUT_MS + 1_500);
      expect(samples(res.text, 'keyward_queue_metrics_up')).toEqual(new Map([['', 0]]));
      expect(samples(res.text, 'keyward_queue_jobs').size).toBe(0);
      expect(samples(res.text, 'keyward_queue_job_outcomes_total').size).toBe(0);
      // The rest of the scrape is there: the process's own metrics and the requests counted so far.
      expect(samples(res.text, 'keyward_process_resident_memory_bytes').size).toBe(1);
      if (scrape > 0) {
        expect(
          samples(res.text, 'keyward_http_requests_total').get('method=GET,route=/metrics,status=200'),
        ).toBe(1);
      }
    }
  } finally {
    await down.close();
  }
});

it('counts a completed and a failed job, with every queue by state', async () => {
  const t = await createTenant(api, 'qm-acme');
  const res = await api.http
    .post('/v1/admin/projections/service-accounts/rebuild')
    .set(bearer(t.admin))
    .expect(202);
  const rebuilt = await Job.fromId(worker.workers[0], res.body.jobId);
  await rebuilt!.waitUntilFinished(events, 15_000);

  // A projection the worker does not know fails every attempt; two attempts still make one failure.
  const doomed = await producer.add(
    JOB.rebuildProjection,
    {
      projection: 'no-such-projection',
      tenantId: 'qm-acme',
      requestedBy: { type: 'operator', id: 'test', name: 'test' },
      correlationId: 'queue-metrics-test',
    },
    { attempts: 2, backoff: { type: 'fixed', delay: 10 } },
  );
  await expect(doomed.waitUntilFinished(events, 15_000)).rejects.toThrow();
  expect((await Job.fromId(producer, doomed.id!))!.attemptsMade).toBe(2);

  const scrape = await api.http.get('/metrics').expect(200);
  expect(scrape.text).toContain('# TYPE keyward_queue_job_outcomes_total counter');
  expect(samples(scrape.text, 'keyward_queue_metrics_up')).toEqual(new Map([['', 1]]));

  const outcomes = samples(scrape.text, 'keyward_queue_job_outcomes_total');
  expect(outcomes.get('outcome=completed,queue=projections')).toBe(1);
  expect(outcomes.get('outcome=failed,queue=projections')).toBe(1);
  expect(outcomes.size).toBe(Object.values(QUEUES).length * 2);

  const jobs = samples(scrape.text, 'keyward_queue_jobs');
  expect(
    Object.fromEntries(QUEUE_STATES.map((state) => [state, jobs.get(`queue=projections,state=${state}`)])),
  ).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 1, completed: 1 });
  // Every queue reports every state, scheduled ones included (their next run waits as delayed).
  for (const queue of Object.values(QUEUES)) {
    for (const state of QUEUE_STATES) {
      expect(jobs.get(`queue=${queue},state=${state}`)).toEqual(expect.any(Number));
    }
  }
  expect(jobs.size).toBe(Object.values(QUEUES).length * QUEUE_STATES.length);
});
