import { Job, UnrecoverableError, Worker, type Queue } from 'bullmq';
import { projectionsQueue, type RebuildProjectionJob } from '@keyward/jobs';
import { closeRedis, producerConnection, workerConnection } from '@keyward/redis';
import {
  BOOTSTRAP_TOKEN,
  bearer,
  createTenant,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';
import { waitFor } from '../../../../test/support/wait';

/**
 * API.md "Operations": who may rebuild which rows, and one rebuild of a projection per scope
 * queued or running at a time. No worker runs here unless a test starts one, so a queued job
 * stays queued for as long as the test needs.
 */
let api: TestApi;
let queue: Queue<RebuildProjectionJob>;
const bootstrap = bearer(BOOTSTRAP_TOKEN);

beforeAll(async () => {
  api = await startTestApi();
  queue = projectionsQueue(producerConnection(api.config.redisUrl), api.config.redisPrefix);
});
afterAll(async () => {
  await queue.close();
  await api?.close();
});
afterEach(() => {
  expect(newServerErrors(api)).toEqual([]);
});

const rebuild = (projection: string, auth: Record<string, string>) =>
  api.http.post(`/v1/admin/projections/${projection}/rebuild`).set(auth);

async function jobData(id: string): Promise<RebuildProjectionJob> {
  return (await Job.fromId<RebuildProjectionJob>(queue, id))!.data;
}

it("an admin's rebuild is of its own tenant; the bootstrap token's of every tenant", async () => {
  const t = await createTenant(api, 'adm-scope');
  const mine = await rebuild('keys', bearer(t.admin)).expect(202);
  expect(mine.body).toEqual({ jobId: expect.stringMatching(/^rebuild-/), projection: 'keys' });
  expect(await jobData(mine.body.jobId)).toEqual(
    expect.objectContaining({ projection: 'keys', tenantId: 'adm-scope' }),
  );
  const all = await rebuild('keys', bootstrap).expect(202);
  expect(await jobData(all.body.jobId)).toEqual(
    expect.objectContaining({
      projection: 'keys',
      tenantId: null,
      requestedBy: { type: 'bootstrap', id: 'bootstrap', name: 'bootstrap token' },
    }),
  );
});

it('answers 409 while the same rebuild is queued, and only for the same projection and scope', async () => {
  const a = await createTenant(api, 'adm-busy-a');
  const b = await createTenant(api, 'adm-busy-b');
  const first = await rebuild('service-accounts', bearer(a.admin)).expect(202);
  const again = await rebuild('service-accounts', bearer(a.admin));
  expectProblem(again, 409, 'CONFLICT');
  expect(again.body.detail).toContain(first.body.jobId);
  // Another admin of the same tenant asks for the same rebuild: the same 409.
  expectProblem(await rebuild('service-accounts', bearer(await a.token('admin'))), 409, 'CONFLICT');
  // Another tenant, another projection, and every tenant at once are other rebuilds.
  await rebuild('service-accounts', bearer(b.admin)).expect(202);
  await rebuild('webhooks', bearer(a.admin)).expect(202);
  await rebuild('service-accounts', bootstrap).expect(202);
  expectProblem(await rebuild('service-accounts', bootstrap), 409, 'CONFLICT');

  const queued = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
  const mine = queued.filter(
    (j) => j.data.projection === 'service-accounts' && j.data.tenantId === a.tenantId,
  );
  expect(mine.map((j) => j.id)).toEqual([first.body.jobId]);
});

it('of many requests at once, exactly one is queued', async () => {
  const t = await createTenant(api, 'adm-race');
  const answers = await Promise.all(Array.from({ length: 12 }, () => rebuild('signals', bearer(t.admin))));
  expect(answers.map((r) => r.status).sort()).toEqual([202, ...Array<number>(11).fill(409)]);
  const queued = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
  expect(
    queued.filter((j) => j.data.projection === 'signals' && j.data.tenantId === t.tenantId),
  ).toHaveLength(1);
});

it('a running rebuild answers 409 too; a completed or failed one blocks nothing', async () => {
  const t = await createTenant(api, 'adm-after');
  const admin = bearer(t.admin);
  // The real queue and Redis, with a processor the test steers: held, then failing for good,
  // then succeeding. Other tests' jobs are drained by it too, harmlessly.
  // A gate rather than a callback the processor sets: the job is active a moment before the
  // processor runs, and opening the gate early must still let it through.
  let release!: () => void;
  const gate = new Promise<void>((done) => (release = done));
  let outcome: 'hold' | 'fail' | 'succeed' = 'hold';
  const connection = workerConnection(api.config.redisUrl);
  const worker = new Worker<RebuildProjectionJob>(
    queue.name,
    async (job) => {
      if (job.data.tenantId !== t.tenantId) return null;
      if (outcome === 'hold') await gate;
      if (outcome === 'fail') throw new UnrecoverableError('the rebuild failed');
      return null;
    },
    { connection, prefix: api.config.redisPrefix, concurrency: 1 },
  );
  const state = (id: string) => queue.getJobState(id);
  try {
    const held = await rebuild('tenants', admin).expect(202);
    await waitFor('the job to run', async () => (await state(held.body.jobId)) === 'active');
    expectProblem(await rebuild('tenants', admin), 409, 'CONFLICT');
    outcome = 'fail';
    release();
    await waitFor('the job to fail', async () => (await state(held.body.jobId)) === 'failed');

    const afterFailure = await rebuild('tenants', admin).expect(202);
    await waitFor('the second job to fail', async () => (await state(afterFailure.body.jobId)) === 'failed');
    outcome = 'succeed';
    const afterSecondFailure = await rebuild('tenants', admin).expect(202);
    await waitFor(
      'the job to complete',
      async () => (await state(afterSecondFailure.body.jobId)) === 'completed',
    );
    await rebuild('tenants', admin).expect(202);
  } finally {
    release();
    await worker.close();
    await closeRedis(connection);
  }
});

it('answers 403 to roles that may not manage, 404 for an unknown projection, before any 409', async () => {
  const t = await createTenant(api, 'adm-roles');
  expectProblem(await rebuild('keys', bearer(await t.token('auditor'))), 403, 'FORBIDDEN');
  expectProblem(await rebuild('no-such-projection', bearer(t.admin)), 404, 'NOT_FOUND');
  expectProblem(await rebuild('no-such-projection', bootstrap), 404, 'NOT_FOUND');
  await rebuild('keys', bearer(t.admin)).expect(202);
});
