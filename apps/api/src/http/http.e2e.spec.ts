import { writeScheduleHeartbeat } from '@keyward/jobs';
import { REDIS } from '@keyward/redis';
import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/** Behaviour every route shares: problem JSON, body limits, ids, logs, metrics, health and docs. */
let api: TestApi;
let admin: string;

beforeAll(async () => {
  api = await startTestApi();
  admin = (await createTenant(api, 'http-acme')).admin;
});
afterAll(async () => {
  await api.close();
});

function expectProblem(
  res: { status: number; headers: Record<string, string>; body: Record<string, unknown> },
  code: string,
) {
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status: res.status, code });
  expect(typeof res.body.type).toBe('string');
  expect(typeof res.body.title).toBe('string');
  expect(typeof res.body.detail).toBe('string');
}

describe('errors', () => {
  it('answers an unknown route with a 404 problem', async () => {
    const res = await api.http.get('/v1/nothing-here').set(bearer(admin)).expect(404);
    expectProblem(res, 'NOT_FOUND');
  });

  it('answers a body over 64 KiB with 413 and stores nothing', async () => {
    const res = await api.http
      .post('/v1/service-accounts')
      .set(bearer(admin))
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ name: 'big', description: 'x'.repeat(65 * 1024) }))
      .expect(413);
    expectProblem(res, 'PAYLOAD_TOO_LARGE');
    expect(await api.database.db.selectFrom('service_accounts').selectAll().execute()).toEqual([]);
  });

  it('accepts a body just under the limit as far as validation', async () => {
    const res = await api.http
      .post('/v1/service-accounts')
      .set(bearer(admin))
      .send({ name: 'almost', description: 'x'.repeat(60 * 1024) })
      .expect(400);
    expectProblem(res, 'VALIDATION_FAILED');
  });

  it('answers a body that is not JSON with 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await api.http
        .post('/v1/service-accounts')
        .set(bearer(admin))
        .set('Content-Type', type)
        .send('name=x')
        .expect(415);
      expectProblem(res, 'UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('answers malformed JSON with 400', async () => {
    const res = await api.http
      .post('/v1/service-accounts')
      .set(bearer(admin))
      .set('Content-Type', 'application/json')
      .send('{"name": ')
      .expect(400);
    expectProblem(res, 'VALIDATION_FAILED');
  });

  it.each([
    '',
    'Basic abc',
    'Bearer',
    'Bearer not-a-token',
    `Bearer ${BOOTSTRAP_TOKEN}x`,
    'Bearer kwop_' + 'A'.repeat(43),
  ])('answers the credential %j with 401', async (header) => {
    const req = api.http.get('/v1/service-accounts');
    const res = await (header ? req.set('Authorization', header) : req).expect(401);
    expectProblem(res, 'UNAUTHENTICATED');
  });

  it('never answers with a stack trace', async () => {
    const res = await api.http.get('/v1/service-accounts/%E0%A4%A').set(bearer(admin));
    expect(res.status).toBeLessThan(500);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+/);
  });
});

describe('correlation and request ids', () => {
  it('keeps a caller correlation id, echoes it and stores it on the events', async () => {
    const res = await api.http
      .post('/v1/service-accounts')
      .set(bearer(admin))
      .set('X-Correlation-Id', 'change-4711')
      .send({ name: 'correlated', environment: 'staging', businessOwner: 'ops', technicalOwner: 'platform' })
      .expect(201);
    expect(res.headers['x-correlation-id']).toBe('change-4711');
    const event = await api.database.db
      .selectFrom('events')
      .selectAll()
      .where('stream_id', '=', res.body.id)
      .executeTakeFirstOrThrow();
    expect(event.metadata).toMatchObject({ correlationId: 'change-4711' });
    expect((event.metadata as { requestId: string }).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('makes one when none (or a malformed one) is sent', async () => {
    const none = await api.http.get('/health/live').expect(200);
    expect(none.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    const bad = await api.http.get('/health/live').set('X-Correlation-Id', 'has spaces and ${}').expect(200);
    expect(bad.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('writes JSON log lines with both ids and without any credential', async () => {
    await api.http
      .get('/v1/service-accounts')
      .set(bearer(admin))
      .set('X-Correlation-Id', 'log-check-1')
      .expect(200);
    const lines = api
      .logs()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { correlationId?: string; req?: { id: string; url: string } });
    const line = lines.find((l) => l.correlationId === 'log-check-1');
    expect(line?.req?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(line?.req?.url).toBe('/v1/service-accounts');
    const logs = api.logs();
    expect(logs).not.toContain(admin);
    expect(logs).not.toContain(BOOTSTRAP_TOKEN);
    expect(logs.toLowerCase()).not.toContain('authorization');
  });
});

describe('operations endpoints', () => {
  it('serves liveness and readiness without a credential', async () => {
    expect((await api.http.get('/health/live').expect(200)).body).toEqual({ status: 'ok' });
    // Readiness includes the scheduled jobs, from the worker's heartbeat; here no worker runs.
    const alone = await api.http.get('/health/ready').expect(503);
    expect(alone.body.details.schedules.status).toBe('down');
    const heartbeat = { checkedAt: new Date().toISOString(), worker: 'test', schedules: [] };
    await writeScheduleHeartbeat(api.app.get(REDIS), api.config.redisPrefix, heartbeat, 60_000);
    const ready = await api.http.get('/health/ready').expect(200);
    expect(ready.body.details).toEqual({
      database: { status: 'up' },
      redis: { status: 'up' },
      schedules: { status: 'up' },
    });
  });

  it('counts requests by route pattern and status, with latency', async () => {
    await api.http.get('/v1/service-accounts/sa_AAAAAAAAAAAAAAAAAAAA').set(bearer(admin)).expect(404);
    const res = await api.http.get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(
      /keyward_http_requests_total\{method="GET",route="\/v1\/service-accounts\/:id",status="404"\} 1/,
    );
    expect(res.text).toMatch(
      /keyward_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/v1\/service-accounts\/:id",status="404"\}/,
    );
    expect(res.text).not.toContain('sa_AAAAAAAAAAAAAAAAAAAA');
  });

  it('publishes the OpenAPI document and its viewer, generated from the controllers', async () => {
    const doc = await api.http.get('/openapi.json').expect(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/service-accounts',
        '/v1/service-accounts/{id}',
        '/v1/service-accounts/{id}/scopes/{scope}',
        '/v1/tenants',
        '/v1/operators',
      ]),
    );
    expect(doc.body.components.schemas.CreateServiceAccountDto.required).toEqual(
      expect.arrayContaining(['name', 'environment', 'businessOwner', 'technicalOwner']),
    );
    const docs = await api.http.get('/docs/').expect(200);
    expect(docs.text).toContain('swagger');
  });
});

describe('a dependency that is down', () => {
  it('answers 503 when PostgreSQL cannot be reached, and readiness says which', async () => {
    const down = await startTestApi({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/keyward' });
    try {
      const res = await down.http
        .get('/v1/service-accounts')
        .set(bearer('kwop_' + 'A'.repeat(43)))
        .expect(503);
      expectProblem(res, 'UNAVAILABLE');
      expect(res.headers['retry-after']).toBeDefined();
      const ready = await down.http.get('/health/ready').expect(503);
      expect(ready.body.details.database.status).toBe('down');
      expect(ready.body.details.redis.status).toBe('up');
    } finally {
      await down.close();
    }
  });

  it('reports Redis down on readiness', async () => {
    const down = await startTestApi({ REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const ready = await down.http.get('/health/ready').expect(503);
      expect(ready.body.details.redis.status).toBe('down');
      expect(ready.body.details.database.status).toBe('up');
    } finally {
      await down.close();
    }
  });
});
