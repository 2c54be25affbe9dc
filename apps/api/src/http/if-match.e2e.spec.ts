import type { Test } from 'supertest';
import type { Queue } from 'bullmq';
import { projectionsQueue, type RebuildProjectionJob } from '@keyward/jobs';
import { producerConnection } from '@keyward/redis';
import {
  bearer,
  createTenant,
  eventCount,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * API.md "Versions and concurrency", one rule for every route that takes If-Match: a malformed
 * one answers 400 VALIDATION_FAILED and a stale one 409 CONFLICT, both changing nothing; the
 * current one (or `*` where there is no version) passes.
 */
let api: TestApi;
let queue: Queue<RebuildProjectionJob>;

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

type Auth = Record<string, string>;

/** One route taking If-Match, set up afresh for each request sent to it. */
interface Target {
  /** Sends the change with this If-Match. */
  send(ifMatch: string): Test;
  /** The version the target is at now; undefined: it has none. */
  version?: number;
  /** Everything the change would change, to compare before and after. */
  state(): Promise<unknown>;
  /** The answer when the change goes through. */
  passes: number;
}

let accounts = 0;
async function account(auth: Auth): Promise<{ id: string; version: number }> {
  const created = await api.http
    .post('/v1/service-accounts')
    .set(auth)
    .send({
      name: `if-match-${++accounts}`,
      environment: 'staging',
      businessOwner: 'ops',
      technicalOwner: 'platform',
      allowedScopes: ['a:read', 'b:read'],
    })
    .expect(201);
  // A second version, so a stale If-Match names one the account really had.
  const updated = await api.http
    .patch(`/v1/service-accounts/${created.body.id}`)
    .set(auth)
    .send({ description: 'second version' })
    .expect(200);
  return { id: created.body.id, version: updated.body.version };
}

async function key(auth: Auth, accountId: string): Promise<{ id: string; version: number }> {
  const issued = await api.http
    .post(`/v1/service-accounts/${accountId}/keys`)
    .set(auth)
    .send({ name: 'if-match-key', scopes: ['a:read'] })
    .expect(201);
  return { id: issued.body.id, version: issued.body.version };
}

const get = async (auth: Auth, path: string) => (await api.http.get(path).set(auth).expect(200)).body;

/** The account and its keys as the API answers them, and how many events there are. */
async function accountState(auth: Auth, id: string) {
  return {
    account: await get(auth, `/v1/service-accounts/${id}`),
    keys: await get(auth, `/v1/service-accounts/${id}/keys`),
    events: await eventCount(api),
  };
}

function accountRoute(
  send: (auth: Auth, id: string) => Test,
  options: { passes?: number; before?: (auth: Auth, id: string) => Promise<unknown> } = {},
) {
  return async (auth: Auth): Promise<Target> => {
    const { id } = await account(auth);
    await options.before?.(auth, id);
    const { version } = await get(auth, `/v1/service-accounts/${id}`);
    return {
      send: (ifMatch) => send(auth, id).set('If-Match', ifMatch),
      version,
      state: () => accountState(auth, id),
      passes: options.passes ?? 200,
    };
  };
}

function keyRoute(send: (auth: Auth, keyId: string) => Test, passes: number) {
  return async (auth: Auth): Promise<Target> => {
    const owner = await account(auth);
    const { id, version } = await key(auth, owner.id);
    return {
      send: (ifMatch) => send(auth, id).set('If-Match', ifMatch),
      version,
      state: () => accountState(auth, owner.id),
      passes,
    };
  };
}

const routes: [string, (auth: Auth) => Promise<Target>][] = [
  [
    'PATCH /v1/service-accounts/{id}',
    accountRoute((auth, id) =>
      api.http.patch(`/v1/service-accounts/${id}`).set(auth).send({ description: 'x' }),
    ),
  ],
  [
    'POST /v1/service-accounts/{id}/disable',
    accountRoute((auth, id) => api.http.post(`/v1/service-accounts/${id}/disable`).set(auth).send({})),
  ],
  [
    'POST /v1/service-accounts/{id}/enable',
    accountRoute((auth, id) => api.http.post(`/v1/service-accounts/${id}/enable`).set(auth).send({}), {
      before: (auth, id) =>
        api.http.post(`/v1/service-accounts/${id}/disable`).set(auth).send({}).expect(200),
    }),
  ],
  [
    'DELETE /v1/service-accounts/{id}',
    accountRoute((auth, id) => api.http.delete(`/v1/service-accounts/${id}`).set(auth).send({})),
  ],
  [
    'POST /v1/service-accounts/{id}/scopes',
    accountRoute((auth, id) =>
      api.http
        .post(`/v1/service-accounts/${id}/scopes`)
        .set(auth)
        .send({ scopes: ['c:write'] }),
    ),
  ],
  [
    'DELETE /v1/service-accounts/{id}/scopes/{scope}',
    accountRoute((auth, id) =>
      api.http.delete(`/v1/service-accounts/${id}/scopes/b:read`).set(auth).send({}),
    ),
  ],
  [
    'POST /v1/service-accounts/{id}/revoke-keys',
    accountRoute((auth, id) => api.http.post(`/v1/service-accounts/${id}/revoke-keys`).set(auth).send({}), {
      before: (auth, id) => key(auth, id),
    }),
  ],
  [
    'POST /v1/keys/{keyId}/rotate',
    keyRoute((auth, id) => api.http.post(`/v1/keys/${id}/rotate`).set(auth).send({}), 201),
  ],
  [
    'POST /v1/keys/{keyId}/revoke',
    keyRoute((auth, id) => api.http.post(`/v1/keys/${id}/revoke`).set(auth).send({}), 200),
  ],
  [
    'PATCH /v1/policy',
    async (auth) => {
      await api.http.patch('/v1/policy').set(auth).send({ unusedAfterDays: 60 }).expect(200);
      const { version } = await get(auth, '/v1/policy');
      return {
        send: (ifMatch) =>
          api.http.patch('/v1/policy').set(auth).set('If-Match', ifMatch).send({ unusedAfterDays: 61 }),
        version,
        state: async () => ({ policy: await get(auth, '/v1/policy'), events: await eventCount(api) }),
        passes: 200,
      };
    },
  ],
  [
    // A read model has no version: only `*` can match it.
    'POST /v1/admin/projections/{name}/rebuild',
    async (auth) => ({
      send: (ifMatch) =>
        api.http.post('/v1/admin/projections/keys/rebuild').set(auth).set('If-Match', ifMatch),
      state: async () => ({ jobs: await queue.getJobCounts(), events: await eventCount(api) }),
      passes: 202,
    }),
  ],
];

it('documents If-Match in OpenAPI on every route that takes it', async () => {
  const doc = await api.http.get('/openapi.json').expect(200);
  const taking = Object.entries(
    doc.body.paths as Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>,
  )
    .flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) =>
          operation.parameters?.some((p) => p.in === 'header' && p.name === 'If-Match'),
        )
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    )
    .sort();
  expect(taking).toEqual(routes.map(([route]) => route).sort());
});

let tenants = 0;
describe.each(routes)('%s', (_route, setUp) => {
  let auth: Auth;
  beforeAll(async () => {
    auth = bearer((await createTenant(api, `if-match-${++tenants}`)).admin);
  });

  it.each(['abc', '"2', 'W/2', '"1", "2"', '""'])(
    'answers If-Match %j with 400 VALIDATION_FAILED and changes nothing',
    async (header) => {
      const target = await setUp(auth);
      const before = await target.state();
      const res = await target.send(header);
      expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(res.body.errors).toEqual([{ field: 'If-Match', message: 'must be a version such as "3"' }]);
      expect(await target.state()).toEqual(before);
    },
  );

  it('answers a stale If-Match with 409 CONFLICT and changes nothing', async () => {
    const target = await setUp(auth);
    const before = await target.state();
    const stale = target.version === undefined ? 1 : target.version - 1;
    const res = await target.send(`"${stale}"`);
    expectProblem(res, 409, 'CONFLICT');
    if (target.version !== undefined) {
      expect(res.body).toEqual(
        expect.objectContaining({ expectedVersion: stale, actualVersion: target.version }),
      );
    }
    expect(await target.state()).toEqual(before);
  });

  it('lets the current version (or *) through', async () => {
    const target = await setUp(auth);
    const res = await target.send(target.version === undefined ? '*' : `"${target.version}"`);
    expect(res.status).toBe(target.passes);
  });
});
