import { gzipSync } from 'node:zlib';
import {
  bearer,
  createTenant,
  eventCount,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/**
 * Bad input is a 4xx problem and changes nothing, on every route that takes a body: each field of
 * each documented body sent as null, as the wrong type, as text no column can hold; and bodies
 * whose Content-Encoding is not what they are.
 */
let api: TestApi;
let admin: Record<string, string>;

interface Operation {
  method: string;
  path: string;
  properties: string[];
}

/** Every operation of the OpenAPI document with a JSON body, and its top-level fields. */
async function bodyOperations(): Promise<Operation[]> {
  const doc = (await api.http.get('/openapi.json').expect(200)).body as {
    paths: Record<
      string,
      Record<string, { requestBody?: { content?: Record<string, { schema?: unknown }> } }>
    >;
    components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
  };
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const schema = operation.requestBody?.content?.['application/json']?.schema as
        { $ref?: string; properties?: Record<string, unknown> } | undefined;
      if (!schema) continue;
      const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()!] : schema;
      operations.push({ method, path, properties: Object.keys(resolved?.properties ?? {}) });
    }
  }
  return operations;
}

/** A path with its parameters filled by well-formed ids that name nothing. */
function concrete(path: string): string {
  return path
    .replace('{id}', 'sa_AAAAAAAAAAAAAAAAAAAA')
    .replace('{keyId}', 'key_AAAAAAAAAAAAAAAAAAAA')
    .replace('{scope}', 'tickets:read')
    .replace('{name}', 'service-accounts')
    .replace(/\{[^}]+\}/g, 'x');
}

beforeAll(async () => {
  api = await startTestApi();
  admin = bearer((await createTenant(api, 'bad-input')).admin);
});
afterAll(async () => {
  await api.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

it('every field of every body, sent as null, as another type or as unstorable text, is a 4xx and stores nothing', async () => {
  const operations = await bodyOperations();
  expect(operations.length).toBeGreaterThan(15);
  const before = await eventCount(api);
  const values: unknown[] = [null, 42, true, [], {}, [null], 'x\u0000y', '\ud800', 'x'.repeat(5000)];
  const failures: string[] = [];
  for (const op of operations) {
    for (const field of op.properties) {
      for (const value of values) {
        const res = await api.http[op.method as 'post' | 'patch' | 'put' | 'delete'](concrete(op.path))
          .set(admin)
          .send({ [field]: value });
        if (res.status >= 500)
          failures.push(`${op.method} ${op.path} ${field}=${JSON.stringify(value)}: ${res.status}`);
      }
    }
  }
  expect(failures).toEqual([]);
  // Some of these are valid changes (a policy limit set to null is off): only refusals must not write.
  expect(await eventCount(api)).toBeGreaterThanOrEqual(before);
});

it('a finding with a null key or token is 400, not a hash of nothing', async () => {
  for (const body of [
    { key: null },
    { token: null },
    [{ token: null, type: 'x' }],
    { key: null, token: 'kw_live_x' },
  ]) {
    const res = await api.http.post('/v1/exposures').set(admin).send(body);
    expect({ body, status: res.status, code: res.body.code }).toEqual({
      body,
      status: 400,
      code: 'VALIDATION_FAILED',
    });
  }
});

describe('Content-Encoding', () => {
  const account = {
    name: 'encoded',
    environment: 'staging',
    businessOwner: 'ops',
    technicalOwner: 'platform',
  };

  it.each(['gzip', 'deflate', 'br', 'x-gzip'])(
    'a body that is not %s as it says is 400, never 500',
    async (encoding) => {
      const res = await api.http
        .post('/v1/service-accounts')
        .set({ ...admin, 'Content-Type': 'application/json', 'Content-Encoding': encoding })
        .send(JSON.stringify(account));
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    },
  );

  it('an encoding it does not know is 415', async () => {
    const res = await api.http
      .post('/v1/service-accounts')
      .set({ ...admin, 'Content-Type': 'application/json', 'Content-Encoding': 'compress' })
      .send(JSON.stringify(account));
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('a gzip body that is gzip is read, and its decoded size is what the 64 KiB limit counts', async () => {
    const ok = await api.http
      .post('/v1/service-accounts')
      .set({ ...admin, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' })
      .serialize((body: unknown) => body as string)
      .send(gzipSync(JSON.stringify(account)));
    expect(ok.status).toBe(201);
    const bomb = gzipSync(JSON.stringify({ ...account, name: 'bomb', description: 'x'.repeat(200_000) }));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const res = await api.http
      .post('/v1/service-accounts')
      .set({ ...admin, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' })
      .serialize((body: unknown) => body as string)
      .send(bomb);
    expect(res.status).toBe(413);
  });
});
