import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { bearer, createTenant, startTestApi, type TestApi } from '../../../../test/support/api';
import { nginxConfig, NGINX } from '../../../../test/support/nginx';

/**
 * The README's nginx `auth_request` configuration, run for real: Debian's nginx in front of a small
 * upstream on loopback, asking a listening Keyward API. A valid key reaches the upstream with the
 * identity headers and without the key; a revoked key is 401, a wrong scope 403.
 */
let api: TestApi;
let upstream: Server;
let nginx: ChildProcess;
let dir: string;
let gateway: ReturnType<typeof request>;
const seen: IncomingHttpHeaders[] = [];
let admin: Record<string, string>;
let key: { id: string; secret: string };
let accountId: string;

function port(server: Server): number {
  return (server.address() as AddressInfo).port;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const p = port(probe);
  await new Promise((resolve) => probe.close(resolve));
  return p;
}

beforeAll(async () => {
  api = await startTestApi();
  await api.app.listen(0, '127.0.0.1');
  const t = await createTenant(api, 'nginx');
  admin = bearer(t.admin);
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: 'behind-nginx',
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['tickets:read', 'tickets:write'],
    })
    .expect(201);
  accountId = account.body.id;
  key = (
    await api.http
      .post(`/v1/service-accounts/${accountId}/keys`)
      .set(admin)
      .send({ name: 'reader', scopes: ['tickets:read'] })
      .expect(201)
  ).body;

  upstream = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ upstream: true, url: req.url }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));

  dir = await mkdtemp(path.join(tmpdir(), 'keyward-nginx-'));
  const listen = await freePort();
  const config = nginxConfig({
    dir,
    listen,
    keyward: `127.0.0.1:${port(api.app.getHttpServer() as Server)}`,
    upstream: `127.0.0.1:${port(upstream)}`,
    verifierToken: await t.token('verifier'),
  });
  await writeFile(path.join(dir, 'nginx.conf'), config);
  nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], {
    stdio: 'ignore',
  });
  gateway = request(`http://127.0.0.1:${listen}`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await gateway.get('/health-of-nginx');
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        const log = await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '');
        throw new Error(`nginx did not start: ${String(error)}\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}, 30_000);

afterAll(async () => {
  nginx?.kill('SIGTERM');
  await new Promise((resolve) => upstream?.close(resolve));
  await api?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('lets a valid key through to the upstream with the identity headers, and strips the key', async () => {
  seen.length = 0;
  const res = await gateway.get('/api/tickets/42').set('X-Api-Key', key.secret).expect(200);
  expect(res.body).toEqual({ upstream: true, url: '/api/tickets/42' });
  expect(seen).toHaveLength(1);
  const headers = seen[0];
  expect(headers).toMatchObject({
    'x-keyward-key-id': key.id,
    'x-keyward-account-id': accountId,
    'x-keyward-account-name': 'behind-nginx',
    'x-keyward-environment': 'production',
    'x-keyward-tenant': 'nginx',
    'x-keyward-scopes': 'tickets:read',
  });
  expect(headers['x-api-key']).toBeUndefined();
  expect(headers.authorization).toBeUndefined();
  expect(headers['x-keyward-verifier']).toBeUndefined();
  expect(JSON.stringify(headers)).not.toContain(key.secret);
});

it('takes the key as Authorization: Bearer too, and strips it as well', async () => {
  seen.length = 0;
  await gateway.post('/api/tickets').set('Authorization', `Bearer ${key.secret}`).send({}).expect(200);
  expect(seen[0]['x-keyward-key-id']).toBe(key.id);
  expect(seen[0].authorization).toBeUndefined();
});

it('refuses a wrong scope with 403, before the upstream sees anything', async () => {
  seen.length = 0;
  const res = await gateway.post('/api/tickets/write').set('X-Api-Key', key.secret).send({});
  expect(res.status).toBe(403);
  expect(res.headers['x-keyward-code']).toBe('INSUFFICIENT_SCOPE');
  expect(seen).toHaveLength(0);
});

it('refuses a missing or unknown key with 401', async () => {
  seen.length = 0;
  expect((await gateway.get('/api/tickets/42')).status).toBe(401);
  const unknown = await gateway.get('/api/tickets/42').set('X-Api-Key', 'kw_live_nope');
  expect(unknown.status).toBe(401);
  expect(unknown.headers['x-keyward-code']).toBe('MALFORMED');
  expect(seen).toHaveLength(0);
});

it('refuses a revoked key with 401 from the moment it is revoked', async () => {
  const doomed = (
    await api.http
      .post(`/v1/service-accounts/${accountId}/keys`)
      .set(admin)
      .send({ name: 'doomed', scopes: ['tickets:read'] })
      .expect(201)
  ).body as { id: string; secret: string };
  await gateway.get('/api/tickets/1').set('X-Api-Key', doomed.secret).expect(200);
  await api.http.post(`/v1/keys/${doomed.id}/revoke`).set(admin).send({ reason: 'leaked' }).expect(200);
  seen.length = 0;
  const res = await gateway.get('/api/tickets/1').set('X-Api-Key', doomed.secret);
  expect(res.status).toBe(401);
  expect(res.headers['x-keyward-code']).toBe('REVOKED');
  expect(seen).toHaveLength(0);
});

it('answers 429 with Retry-After once the rate limit is used up (auth_request alone would say 500)', async () => {
  const limited = (
    await api.http
      .post(`/v1/service-accounts/${accountId}/keys`)
      .set(admin)
      .send({ name: 'limited', scopes: ['tickets:read'], rateLimit: { limit: 1, windowSeconds: 60 } })
      .expect(201)
  ).body as { id: string; secret: string };
  await gateway.get('/api/tickets/1').set('X-Api-Key', limited.secret).expect(200);
  seen.length = 0;
  const res = await gateway.get('/api/tickets/1').set('X-Api-Key', limited.secret);
  expect(res.status).toBe(429);
  expect(res.headers['x-keyward-code']).toBe('RATE_LIMITED');
  expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(seen).toHaveLength(0);
});
