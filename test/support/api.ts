import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import request, { type Response } from 'supertest';
import { ManualClock } from '@keyward/core';
import { loadConfig, type KeywardConfig } from '@keyward/config';
import { createApi } from '../../apps/api/src/app';
import { createTestDatabase, testRedisPrefix, type TestDatabase } from './database';
import { TEST_REDIS_URL } from './env';

export const BOOTSTRAP_TOKEN = 'kwb_test-bootstrap-token-0123456789abcdef';

export interface TestApi {
  app: INestApplication;
  http: ReturnType<typeof request>;
  database: TestDatabase;
  config: KeywardConfig;
  clock: ManualClock;
  /** Every log line the app wrote so far. */
  logs(): string;
  close(): Promise<void>;
}

/** The real HTTP app on this file's own database and Redis prefix, with a clock the test moves. */
export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  const database = await createTestDatabase();
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    KEYWARD_BOOTSTRAP_TOKEN: BOOTSTRAP_TOKEN,
    KEYWARD_REDIS_PREFIX: testRedisPrefix(),
    LOG_LEVEL: 'info',
    ...env,
  });
  const clock = new ManualClock('2026-03-01T09:00:00.000Z');
  const logStream = new PassThrough();
  const lines: string[] = [];
  logStream.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
  const app = await createApi({ config, clock, logStream });
  return {
    app,
    http: request(app.getHttpServer()),
    database,
    config,
    clock,
    logs: () => lines.join(''),
    close: async () => {
      await app.close();
      await database.drop();
    },
  };
}

export interface TenantFixture {
  tenantId: string;
  admin: string;
  token(role: 'admin' | 'approver' | 'auditor' | 'verifier'): Promise<string>;
}

/** A tenant with an admin operator, made through the API as a first user would. */
export async function createTenant(api: TestApi, tenantId: string): Promise<TenantFixture> {
  const auth = { Authorization: `Bearer ${BOOTSTRAP_TOKEN}` };
  await api.http
    .post('/v1/tenants')
    .set(auth)
    .send({ id: tenantId, name: `Tenant ${tenantId}` })
    .expect(201);
  const token = async (role: string) => {
    const res = await api.http
      .post('/v1/operators')
      .set(auth)
      .send({ tenantId, name: `${role}-${tenantId}`, role })
      .expect(201);
    return res.body.token as string;
  };
  return { tenantId, admin: await token('admin'), token };
}

export function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}

const checkedLines = new WeakMap<TestApi, number>();

/**
 * Requests that answered 5xx since the last call, as "METHOD url status", read from the app's own
 * request log. A suite calls it after each test: no request, however bad, may be a server error.
 */
export function newServerErrors(api: TestApi): string[] {
  const lines = api.logs().split('\n').filter(Boolean);
  const fresh = lines.slice(checkedLines.get(api) ?? 0);
  checkedLines.set(api, lines.length);
  return fresh.flatMap((line) => {
    const entry = JSON.parse(line) as {
      res?: { statusCode?: number };
      req?: { method?: string; url?: string };
    };
    const status = entry.res?.statusCode ?? 0;
    return status >= 500 ? [`${entry.req?.method} ${entry.req?.url} ${status}`] : [];
  });
}

/** How many events are stored: a request that must change nothing leaves it as it was. */
export async function eventCount(api: TestApi): Promise<number> {
  const row = await api.database.db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** An RFC 9457 problem of API.md's shape, with this status and code. */
export function expectProblem(res: Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toEqual(
    expect.objectContaining({
      type: expect.any(String),
      title: expect.any(String),
      status,
      code,
      detail: expect.any(String),
    }),
  );
}

/** Another API instance on the same database and clock, listening on a port of its own. */
export interface ApiInstance {
  app: INestApplication;
  http: ReturnType<typeof request>;
  logs(): string;
}

/**
 * A second (third...) instance of the app beside `api`: the same database and clock, the given
 * config (by default `api`'s, so the same Redis prefix and invalidation channel), its own logs.
 */
export async function startInstance(api: TestApi, config: KeywardConfig = api.config): Promise<ApiInstance> {
  const logStream = new PassThrough();
  const lines: string[] = [];
  logStream.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
  const app = await createApi({ config, clock: api.clock, logStream });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, http: request(`http://127.0.0.1:${port}`), logs: () => lines.join('') };
}

/** "METHOD url status" of every answer of 500 or more in these log lines (503 too unless excepted). */
export function serverErrorsIn(logs: string, options: { except503?: boolean } = {}): string[] {
  return logs
    .split('\n')
    .filter(Boolean)
    .map(
      (line) =>
        JSON.parse(line) as { res?: { statusCode?: number }; req?: { method?: string; url?: string } },
    )
    .filter((entry) => {
      const status = entry.res?.statusCode ?? 0;
      return status >= 500 && !(options.except503 && status === 503);
    })
    .map((entry) => `${entry.req?.method} ${entry.req?.url} ${entry.res?.statusCode}`);
}
