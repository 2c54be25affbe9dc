import { createServer, connect, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import Redis from 'ioredis';
import { sql } from 'kysely';
import request, { type Response } from 'supertest';
import type { KeywardConfig } from '@keyward/config';
import { DB, type Db } from '@keyward/db';
import { checkOf, issueKeySecret } from '@keyward/keys';
import { REDIS } from '@keyward/redis';
import { UsageBuffer, UsageCounters, flushUsage } from '@keyward/usage';
import { createApi } from '../app';
import {
  bearer,
  createTenant,
  expectProblem,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';

/** API.md "Verify (the hot path)": every answer code, their order, roles, body shape and failing closed. */

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});

afterEach(() => expect(newServerErrors(api)).toEqual([]));

type Headers = Record<string, string>;

interface Fixture {
  tenantId: string;
  admin: Headers;
  verifier: Headers;
}

interface IssuedKey {
  id: string;
  serviceAccountId: string;
  prefix: string;
  secret: string;
  expiresAt: string;
  scopes: string[];
}

interface Account {
  id: string;
  name: string;
  environment: string;
}

let seq = 0;
function unique(base: string): string {
  seq += 1;
  return `${base}-${seq}`;
}

async function tenant(base: string): Promise<Fixture> {
  const t = await createTenant(api, unique(base));
  return { tenantId: t.tenantId, admin: bearer(t.admin), verifier: bearer(await t.token('verifier')) };
}

async function createAccount(
  t: Fixture,
  overrides: Record<string, unknown> = {},
  http: ReturnType<typeof request> = api.http,
): Promise<Account> {
  const res = await http
    .post('/v1/service-accounts')
    .set(t.admin)
    .send({
      name: unique('acct'),
      environment: 'production',
      businessOwner: 'support-ops',
      technicalOwner: 'ai-platform',
      allowedScopes: ['tickets:read', 'summaries:draft'],
      ...overrides,
    });
  expect(res.status).toBe(201);
  return res.body as Account;
}

async function issueKey(
  t: Fixture,
  accountId: string,
  overrides: Record<string, unknown> = {},
): Promise<IssuedKey> {
  const res = await api.http
    .post(`/v1/service-accounts/${accountId}/keys`)
    .set(t.admin)
    .send({ name: unique('key'), scopes: ['tickets:read'], ...overrides });
  expect(res.status).toBe(201);
  return res.body as IssuedKey;
}

/** An account with one key, ready to verify. */
async function accountWithKey(
  t: Fixture,
  account: Record<string, unknown> = {},
  key: Record<string, unknown> = {},
): Promise<{ account: Account; key: IssuedKey }> {
  const created = await createAccount(t, account);
  return { account: created, key: await issueKey(t, created.id, key) };
}

/** Sends at once (a supertest request is lazy until awaited), so tests can hold one in flight. */
async function verify(
  auth: Headers,
  body: Record<string, unknown>,
  http: ReturnType<typeof request> = api.http,
): Promise<Response> {
  return http.post('/v1/verify').set(auth).send(body);
}

async function expectCode(auth: Headers, body: Record<string, unknown>, code: string): Promise<void> {
  const res = await verify(auth, body);
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ valid: false, code });
}

async function expectValid(auth: Headers, body: Record<string, unknown>): Promise<Response> {
  const res = await verify(auth, body);
  expect(res.status).toBe(200);
  expect(res.body).toEqual(expect.objectContaining({ valid: true }));
  return res;
}

/** Changes the character at `index` to another base62 character. */
function changeChar(key: string, index: number): string {
  const c = key[index];
  const other = c === 'A' ? 'B' : 'A';
  return `${key.slice(0, index)}${other}${key.slice(index + 1)}`;
}

/** The same key with its body rewritten and the checksum recomputed, so only the lookup can refuse it. */
function reChecked(body: string): string {
  return `${body}${checkOf(body)}`;
}

/** A second app on the same database and Redis prefix as `api`, as a second API instance is. */
async function secondApp(config: Partial<KeywardConfig> = {}): Promise<{
  app: INestApplication;
  http: ReturnType<typeof request>;
  logs: () => string;
  /** Answers of 500 or more other than 503, from its request log. */
  serverErrors: () => string[];
}> {
  const logStream = new PassThrough();
  const lines: string[] = [];
  logStream.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
  const app = await createApi({ config: { ...api.config, ...config }, clock: api.clock, logStream });
  const serverErrors = () =>
    lines
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { res?: { statusCode?: number }; req?: { url?: string } })
      .filter((entry) => (entry.res?.statusCode ?? 0) >= 500 && entry.res?.statusCode !== 503)
      .map((entry) => `${entry.req?.url} ${entry.res?.statusCode}`);
  return { app, http: request(app.getHttpServer()), logs: () => lines.join(''), serverErrors };
}

describe('a valid key', () => {
  it('answers 200 with the key, its account, scopes, expiry and no rate limit', async () => {
    const t = await tenant('valid');
    const { account, key } = await accountWithKey(t, {}, { scopes: ['tickets:read', 'summaries:draft'] });
    const res = await verify(t.verifier, {
      key: key.secret,
      scope: 'tickets:read',
      environment: 'production',
      source: { ip: '203.0.113.9', system: 'helpdesk' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      valid: true,
      keyId: key.id,
      serviceAccount: { id: account.id, name: account.name, environment: 'production', tenantId: t.tenantId },
      scopes: ['summaries:draft', 'tickets:read'],
      expiresAt: key.expiresAt,
      rateLimit: null,
    });
    expect(res.body.expiresAt).toMatch(ISO_MS);
  });

  it('needs only the key: scope, resource, environment and source are optional', async () => {
    const t = await tenant('minimal');
    const { key } = await accountWithKey(t);
    const res = await expectValid(t.verifier, { key: key.secret });
    expect(res.body.keyId).toBe(key.id);
  });

  it('answers the rate limit state for a key that has one', async () => {
    const t = await tenant('rlstate');
    const { key } = await accountWithKey(t, {}, { rateLimit: { limit: 5, windowSeconds: 60 } });
    const res = await expectValid(t.verifier, { key: key.secret });
    expect(res.body.rateLimit).toEqual({ remaining: 4, resetAt: expect.stringMatching(ISO_MS) });
    const resetAt = Date.parse(res.body.rateLimit.resetAt);
    const now = api.clock.now().getTime();
    expect(resetAt).toBeGreaterThan(now);
    expect(resetAt - now).toBeLessThanOrEqual(60_000);
  });
});

describe('MALFORMED', () => {
  it('refuses garbage, an empty string and a key-like string of the wrong form', async () => {
    const t = await tenant('malformed');
    for (const key of ['', 'hello', 'kw_', 'kw_live_', 'Bearer kw_live_x', 'kw_prod_' + 'A'.repeat(59)]) {
      await expectCode(t.verifier, { key }, 'MALFORMED');
    }
  });

  it('refuses a real key truncated, extended, padded or with one character changed', async () => {
    const t = await tenant('mangled');
    const { key } = await accountWithKey(t);
    const k = key.secret;
    const variants = [
      k.slice(0, -1),
      k.slice(1),
      `${k}A`,
      ` ${k}`,
      `${k}\n`,
      k.toUpperCase(),
      k.replace('kw_live_', 'kw_dev_'), // the environment tag is under the checksum too
      changeChar(k, k.length - 1), // the check itself
      changeChar(k, k.length - 10), // the secret part: the checksum no longer matches
      changeChar(k, key.prefix.length - 1), // the id part
    ];
    for (const variant of variants) await expectCode(t.verifier, { key: variant }, 'MALFORMED');
    await expectValid(t.verifier, { key: k });
  });

  it('comes before every other code: a mangled key of a revoked key is MALFORMED', async () => {
    const t = await tenant('malfirst');
    const { key } = await accountWithKey(t);
    await api.http.post(`/v1/keys/${key.id}/revoke`).set(t.admin).send({ reason: 'test' }).expect(200);
    await expectCode(
      t.verifier,
      { key: changeChar(key.secret, key.secret.length - 1), scope: 'x:y', environment: 'staging' },
      'MALFORMED',
    );
  });
});

describe('UNKNOWN', () => {
  it('refuses a well-formed key that was never issued', async () => {
    const t = await tenant('unknown');
    await accountWithKey(t);
    const never = issueKeySecret('key_AAAAAAAAAAAAAAAAAAAA', 'production').secret;
    await expectCode(t.verifier, { key: never }, 'UNKNOWN');
  });

  it('refuses the id of a real key with another secret, or another environment tag', async () => {
    const t = await tenant('wrongsecret');
    const { key } = await accountWithKey(t);
    await expectCode(t.verifier, { key: issueKeySecret(key.id, 'production').secret }, 'UNKNOWN');
    const body = key.secret.slice(0, -6);
    await expectCode(t.verifier, { key: reChecked(body.replace('kw_live_', 'kw_dev_')) }, 'UNKNOWN');
    await expectCode(t.verifier, { key: reChecked(changeChar(body, body.length - 1)) }, 'UNKNOWN');
    await expectValid(t.verifier, { key: key.secret });
  });

  it("refuses another tenant's key, however valid it is there", async () => {
    const a = await tenant('tenant-a');
    const b = await tenant('tenant-b');
    const { key } = await accountWithKey(b);
    await expectValid(b.verifier, { key: key.secret });
    await expectCode(a.verifier, { key: key.secret }, 'UNKNOWN');
    await expectCode(a.verifier, { key: key.secret, scope: 'tickets:read' }, 'UNKNOWN');
  });

  it('comes before REVOKED: a revoked key with another secret, or in another tenant, is UNKNOWN', async () => {
    const a = await tenant('unkfirst-a');
    const b = await tenant('unkfirst-b');
    const { key } = await accountWithKey(b);
    await api.http.post(`/v1/keys/${key.id}/revoke`).set(b.admin).send({}).expect(200);
    await expectCode(b.verifier, { key: key.secret }, 'REVOKED');
    await expectCode(b.verifier, { key: issueKeySecret(key.id, 'production').secret }, 'UNKNOWN');
    await expectCode(a.verifier, { key: key.secret }, 'UNKNOWN');
  });
});

describe('REVOKED', () => {
  it('refuses a key from its revocation on', async () => {
    const t = await tenant('revoked');
    const { key } = await accountWithKey(t);
    await expectValid(t.verifier, { key: key.secret });
    const revoked = await api.http
      .post(`/v1/keys/${key.id}/revoke`)
      .set(t.admin)
      .send({ reason: 'leaked', emergency: true });
    expect(revoked.status).toBe(200);
    await expectCode(t.verifier, { key: key.secret }, 'REVOKED');
  });

  it('comes before EXPIRED and ACCOUNT_DISABLED', async () => {
    const t = await tenant('revfirst');
    const { account, key } = await accountWithKey(t, {}, { expiresInDays: 1 });
    await api.http.post(`/v1/keys/${key.id}/revoke`).set(t.admin).send({}).expect(200);
    await api.http.post(`/v1/service-accounts/${account.id}/disable`).set(t.admin).send({}).expect(200);
    api.clock.advance(2 * 86_400_000);
    await expectCode(
      t.verifier,
      { key: key.secret, environment: 'staging', scope: 'x:y', source: { ip: '1.2.3.4' } },
      'REVOKED',
    );
  });

  it("refuses every key of a deleted account, and the break-glass revocation's keys", async () => {
    const t = await tenant('deleted');
    const { account, key } = await accountWithKey(t);
    const other = await accountWithKey(t);
    const second = await issueKey(t, other.account.id);
    await api.http
      .delete(`/v1/service-accounts/${account.id}`)
      .set(t.admin)
      .send({ reason: 'gone' })
      .expect(200);
    await expectCode(t.verifier, { key: key.secret }, 'REVOKED');
    await api.http
      .post(`/v1/service-accounts/${other.account.id}/revoke-keys`)
      .set(t.admin)
      .send({ reason: 'incident' })
      .expect(200);
    await expectCode(t.verifier, { key: other.key.secret }, 'REVOKED');
    await expectCode(t.verifier, { key: second.secret }, 'REVOKED');
  });
});

describe('EXPIRED', () => {
  it('refuses a key from the moment it expires', async () => {
    const t = await tenant('expired');
    const { key } = await accountWithKey(t, {}, { expiresInDays: 1 });
    const expiresAt = Date.parse(key.expiresAt);
    api.clock.set(new Date(expiresAt - 1));
    await expectValid(t.verifier, { key: key.secret });
    api.clock.set(new Date(expiresAt));
    await expectCode(t.verifier, { key: key.secret }, 'EXPIRED');
  });

  it('refuses a rotated key once its grace ends, while the new key keeps working', async () => {
    const t = await tenant('rotated');
    const { key } = await accountWithKey(t);
    const rotated = await api.http
      .post(`/v1/keys/${key.id}/rotate`)
      .set(t.admin)
      .send({ gracePeriodSeconds: 3600, reason: 'scheduled' });
    expect(rotated.status).toBe(201);
    const next = rotated.body as IssuedKey;
    expect(next.secret).not.toBe(key.secret);
    const during = await expectValid(t.verifier, { key: key.secret });
    // The old key works until the grace ends, and the answer says so, not its original expiry.
    const graceEndsAt = (await api.http.get(`/v1/keys/${key.id}`).set(t.admin).expect(200)).body.graceEndsAt;
    expect(graceEndsAt).toBe(new Date(api.clock.now().getTime() + 3600 * 1000).toISOString());
    expect(during.body.expiresAt).toBe(graceEndsAt);
    await expectValid(t.verifier, { key: next.secret });
    api.clock.advance(3600 * 1000 - 1);
    await expectValid(t.verifier, { key: key.secret });
    api.clock.advance(1);
    await expectCode(t.verifier, { key: key.secret }, 'EXPIRED');
    const res = await expectValid(t.verifier, { key: next.secret });
    expect(res.body.keyId).toBe(next.id);
  });

  it('a rotation with no grace refuses the old key at once', async () => {
    const t = await tenant('nograce');
    const { key } = await accountWithKey(t);
    await api.http.post(`/v1/keys/${key.id}/rotate`).set(t.admin).send({ gracePeriodSeconds: 0 }).expect(201);
    await expectCode(t.verifier, { key: key.secret }, 'EXPIRED');
  });

  it('comes before ACCOUNT_DISABLED', async () => {
    const t = await tenant('expfirst');
    const { account, key } = await accountWithKey(t, {}, { expiresInDays: 1 });
    await api.http.post(`/v1/service-accounts/${account.id}/disable`).set(t.admin).send({}).expect(200);
    api.clock.advance(86_400_000);
    await expectCode(t.verifier, { key: key.secret, environment: 'staging' }, 'EXPIRED');
  });
});

describe('ACCOUNT_DISABLED', () => {
  it('refuses every key of a disabled account until it is enabled again', async () => {
    const t = await tenant('disabled');
    const { account, key } = await accountWithKey(t);
    const second = await issueKey(t, account.id);
    await api.http
      .post(`/v1/service-accounts/${account.id}/disable`)
      .set(t.admin)
      .send({ reason: 'investigating' })
      .expect(200);
    await expectCode(t.verifier, { key: key.secret }, 'ACCOUNT_DISABLED');
    await expectCode(t.verifier, { key: second.secret }, 'ACCOUNT_DISABLED');
    await api.http.post(`/v1/service-accounts/${account.id}/enable`).set(t.admin).send({}).expect(200);
    await expectValid(t.verifier, { key: key.secret });
    await expectValid(t.verifier, { key: second.secret });
  });

  it('comes before ENVIRONMENT_MISMATCH, IP_NOT_ALLOWED, INSUFFICIENT_SCOPE and OUT_OF_BOUNDARY', async () => {
    const t = await tenant('disfirst');
    const { account, key } = await accountWithKey(t, {
      allowedCidrs: ['10.20.0.0/16'],
      boundaries: ['site:a'],
    });
    await api.http.post(`/v1/service-accounts/${account.id}/disable`).set(t.admin).send({}).expect(200);
    await expectCode(
      t.verifier,
      {
        key: key.secret,
        environment: 'staging',
        scope: 'other:read',
        resource: 'site:b',
        source: { ip: '192.0.2.1' },
      },
      'ACCOUNT_DISABLED',
    );
  });
});

describe('ENVIRONMENT_MISMATCH', () => {
  it("refuses a request for another environment than the key's", async () => {
    const t = await tenant('envmismatch');
    const { key } = await accountWithKey(t);
    await expectValid(t.verifier, { key: key.secret, environment: 'production' });
    await expectCode(t.verifier, { key: key.secret, environment: 'staging' }, 'ENVIRONMENT_MISMATCH');
    await expectCode(t.verifier, { key: key.secret, environment: 'development' }, 'ENVIRONMENT_MISMATCH');
    await expectCode(t.verifier, { key: key.secret, environment: 'live' }, 'ENVIRONMENT_MISMATCH');
    await expectCode(t.verifier, { key: key.secret, environment: '' }, 'ENVIRONMENT_MISMATCH');
  });

  it('holds for a staging key too, and comes before IP_NOT_ALLOWED', async () => {
    const t = await tenant('envfirst');
    const { key } = await accountWithKey(t, { environment: 'staging', allowedCidrs: ['10.20.0.0/16'] });
    expect(key.secret.startsWith('kw_stage_')).toBe(true);
    await expectValid(t.verifier, { key: key.secret, environment: 'staging', source: { ip: '10.20.3.4' } });
    await expectCode(
      t.verifier,
      { key: key.secret, environment: 'production', source: { ip: '192.0.2.1' }, scope: 'x:y' },
      'ENVIRONMENT_MISMATCH',
    );
  });
});

describe('IP_NOT_ALLOWED', () => {
  it("admits an address inside both the account's and the key's CIDRs, and no other", async () => {
    const t = await tenant('cidr');
    const { key } = await accountWithKey(
      t,
      { allowedCidrs: ['10.20.0.0/16', '2001:db8::/32'] },
      { allowedCidrs: ['10.20.1.0/24', '2001:db8::/32'] },
    );
    const at = (ip?: string) => ({ key: key.secret, ...(ip === undefined ? {} : { source: { ip } }) });
    await expectValid(t.verifier, at('10.20.1.7'));
    await expectValid(t.verifier, at('10.20.1.255'));
    await expectValid(t.verifier, at('2001:db8::7'));
    await expectValid(t.verifier, at('2001:db8:ffff::1'));
    await expectCode(t.verifier, at('10.20.2.7'), 'IP_NOT_ALLOWED'); // in the account's, not the key's
    await expectCode(t.verifier, at('10.21.1.7'), 'IP_NOT_ALLOWED');
    await expectCode(t.verifier, at('2001:db9::7'), 'IP_NOT_ALLOWED');
    await expectCode(t.verifier, at(undefined), 'IP_NOT_ALLOWED');
    await expectCode(t.verifier, { key: key.secret, source: { system: 'helpdesk' } }, 'IP_NOT_ALLOWED');
    // Something that is not an address is a 400 (below), not a refusal.
  });

  it("applies the account's CIDRs to a key without its own", async () => {
    const t = await tenant('cidracct');
    const { key } = await accountWithKey(t, { allowedCidrs: ['10.20.0.0/16'] });
    await expectValid(t.verifier, { key: key.secret, source: { ip: '10.20.2.7' } });
    await expectCode(t.verifier, { key: key.secret, source: { ip: '10.30.2.7' } }, 'IP_NOT_ALLOWED');
    await expectCode(t.verifier, { key: key.secret }, 'IP_NOT_ALLOWED');
  });

  it('reads an IPv4 address written as IPv6 as that IPv4 address, and IPv6 ranges never admit IPv4', async () => {
    const t = await tenant('cidrmapped');
    const { key } = await accountWithKey(t, { allowedCidrs: ['10.20.0.0/16'] });
    await expectValid(t.verifier, { key: key.secret, source: { ip: '::ffff:10.20.1.7' } });
    await expectCode(t.verifier, { key: key.secret, source: { ip: '::ffff:10.30.1.7' } }, 'IP_NOT_ALLOWED');
    const v6 = await accountWithKey(t, { allowedCidrs: ['2001:db8::/32'] });
    await expectValid(t.verifier, { key: v6.key.secret, source: { ip: '2001:db8::1' } });
    await expectCode(t.verifier, { key: v6.key.secret, source: { ip: '10.20.1.7' } }, 'IP_NOT_ALLOWED');
  });

  it('admits any address, or none, when neither the account nor the key has CIDRs', async () => {
    const t = await tenant('nocidr');
    const { key } = await accountWithKey(t);
    await expectValid(t.verifier, { key: key.secret });
    await expectValid(t.verifier, { key: key.secret, source: { ip: '192.0.2.1' } });
  });

  it('answers 400 naming source.ip for a source ip that is not one address, with or without CIDRs', async () => {
    const t = await tenant('badip');
    const open = await accountWithKey(t);
    const fenced = await accountWithKey(t, { allowedCidrs: ['10.20.0.0/16'] });
    for (const ip of [
      '999.1.1.1',
      '10.0.0.1/33',
      '10.20.1.7/32',
      '',
      'not-an-ip',
      '010.20.1.7',
      ' 10.20.1.7',
      'fe80::1%eth0',
      '10.20.1.7, 10.20.1.8',
      '[::1]:443',
    ]) {
      for (const key of [open.key, fenced.key]) {
        const res = await verify(t.verifier, { key: key.secret, source: { ip, system: 'helpdesk' } });
        expectProblem(res, 400, 'VALIDATION_FAILED');
        expect({ ip, fields: res.body.errors.map((e: { field: string }) => e.field) }).toEqual({
          ip,
          fields: ['source.ip'],
        });
        expect(res.text).not.toContain(key.secret);
      }
    }
    // The same addresses written well pass.
    await expectValid(t.verifier, { key: fenced.key.secret, source: { ip: '10.20.1.7' } });
    await expectValid(t.verifier, { key: open.key.secret, source: { ip: '2001:db8::7' } });
  });

  it('comes before INSUFFICIENT_SCOPE', async () => {
    const t = await tenant('ipfirst');
    const { key } = await accountWithKey(t, { allowedCidrs: ['10.20.0.0/16'] });
    await expectCode(
      t.verifier,
      { key: key.secret, scope: 'summaries:draft', source: { ip: '192.0.2.1' } },
      'IP_NOT_ALLOWED',
    );
  });
});

describe('INSUFFICIENT_SCOPE', () => {
  it('admits a scope the key carries or a wildcard of its product covers, and no other', async () => {
    const t = await tenant('scope');
    const { key } = await accountWithKey(
      t,
      { environment: 'staging', allowedScopes: ['tickets:*', 'summaries:draft'] },
      { scopes: ['tickets:*'] },
    );
    await expectValid(t.verifier, { key: key.secret, scope: 'tickets:read' });
    await expectValid(t.verifier, { key: key.secret, scope: 'tickets:write' });
    await expectValid(t.verifier, { key: key.secret, scope: 'tickets:*' });
    await expectCode(t.verifier, { key: key.secret, scope: 'summaries:draft' }, 'INSUFFICIENT_SCOPE');
    await expectCode(t.verifier, { key: key.secret, scope: 'ticketsx:read' }, 'INSUFFICIENT_SCOPE');
    await expectCode(t.verifier, { key: key.secret, scope: 'tickets' }, 'INSUFFICIENT_SCOPE');
    await expectCode(t.verifier, { key: key.secret, scope: '' }, 'INSUFFICIENT_SCOPE');
  });

  it('a narrow key does not cover its wildcard, nor a scope only its account has', async () => {
    const t = await tenant('narrow');
    const { key } = await accountWithKey(t);
    await expectValid(t.verifier, { key: key.secret, scope: 'tickets:read' });
    await expectCode(t.verifier, { key: key.secret, scope: 'tickets:*' }, 'INSUFFICIENT_SCOPE');
    await expectCode(t.verifier, { key: key.secret, scope: 'summaries:draft' }, 'INSUFFICIENT_SCOPE');
  });

  it('follows a narrowed ceiling: a scope removed from the account is removed from its keys', async () => {
    const t = await tenant('narrowed');
    const { account, key } = await accountWithKey(t, {}, { scopes: ['tickets:read', 'summaries:draft'] });
    await expectValid(t.verifier, { key: key.secret, scope: 'summaries:draft' });
    await api.http
      .delete(`/v1/service-accounts/${account.id}/scopes/summaries:draft`)
      .set(t.admin)
      .send({})
      .expect(200);
    await expectCode(t.verifier, { key: key.secret, scope: 'summaries:draft' }, 'INSUFFICIENT_SCOPE');
    const res = await expectValid(t.verifier, { key: key.secret, scope: 'tickets:read' });
    expect(res.body.scopes).toEqual(['tickets:read']);
  });

  it('comes before OUT_OF_BOUNDARY', async () => {
    const t = await tenant('scopefirst');
    const { key } = await accountWithKey(t, { boundaries: ['site:plant-7'] });
    await expectCode(
      t.verifier,
      { key: key.secret, scope: 'summaries:draft', resource: 'site:plant-70' },
      'INSUFFICIENT_SCOPE',
    );
  });
});

describe('OUT_OF_BOUNDARY', () => {
  it("matches whole path segments of the account's boundary for a key without its own", async () => {
    const t = await tenant('boundary');
    const { key } = await accountWithKey(t, { boundaries: ['site:plant-7'] });
    const at = (resource: string) => ({ key: key.secret, resource });
    await expectValid(t.verifier, at('site:plant-7'));
    await expectValid(t.verifier, at('site:plant-7/asset:1'));
    await expectValid(t.verifier, at('site:plant-7/asset-group:pumps/asset:P-101'));
    await expectCode(t.verifier, at('site:plant-70'), 'OUT_OF_BOUNDARY');
    await expectCode(t.verifier, at('site:plant-70/asset:1'), 'OUT_OF_BOUNDARY');
    await expectCode(t.verifier, at('site:plant-8/asset:1'), 'OUT_OF_BOUNDARY');
    await expectCode(t.verifier, at('site:plant'), 'OUT_OF_BOUNDARY');
    await expectCode(t.verifier, at('x/site:plant-7'), 'OUT_OF_BOUNDARY');
    await expectCode(t.verifier, at(''), 'OUT_OF_BOUNDARY');
    // No resource asked about: nothing to bound.
    await expectValid(t.verifier, { key: key.secret });
  });

  it('refuses a resource that is not canonical: dot segments, empty segments, encoded or other forms', async () => {
    const t = await tenant('canonical');
    const { key } = await accountWithKey(t, { boundaries: ['site:plant-7'] });
    const at = (resource: string) => ({ key: key.secret, resource });
    for (const resource of [
      'site:plant-7/../plant-8',
      'site:plant-7/../site:plant-8',
      'site:plant-7/./asset:1',
      'site:plant-7/..',
      'site:plant-7/',
      'site:plant-7//asset:1',
      'site:plant-7/%2e%2e/site:plant-8',
      'site:plant-7/%2E%2E',
      'site:plant-7\\..\\site:plant-8',
      'site:plant-7/asset:..',
      'site:plant-7/..:x',
      'site:plant-7/\uff0e\uff0e/site:plant-8',
      'site:plant-7/asset',
    ]) {
      const res = await verify(t.verifier, at(resource));
      expect({ resource, status: res.status, body: res.body }).toEqual({
        resource,
        status: 200,
        body: { valid: false, code: 'OUT_OF_BOUNDARY' },
      });
    }
    await expectValid(t.verifier, at('site:plant-7/asset:1'));
  });

  it("uses the key's own boundaries when it has them", async () => {
    const t = await tenant('keybound');
    const { key } = await accountWithKey(
      t,
      { boundaries: ['site:plant-7'] },
      { boundaries: ['site:plant-7/asset-group:pumps'] },
    );
    await expectValid(t.verifier, {
      key: key.secret,
      resource: 'site:plant-7/asset-group:pumps/asset:P-101',
    });
    await expectCode(
      t.verifier,
      { key: key.secret, resource: 'site:plant-7/asset-group:fans' },
      'OUT_OF_BOUNDARY',
    );
    await expectCode(t.verifier, { key: key.secret, resource: 'site:plant-7' }, 'OUT_OF_BOUNDARY');
    await expectCode(
      t.verifier,
      { key: key.secret, resource: 'site:plant-7/asset-group:pumpsx' },
      'OUT_OF_BOUNDARY',
    );
  });

  it('an account without boundaries is unbounded', async () => {
    const t = await tenant('unbounded');
    const { key } = await accountWithKey(t);
    await expectValid(t.verifier, { key: key.secret, resource: 'site:anywhere/asset:1' });
    await expectValid(t.verifier, { key: key.secret, resource: 'anything at all' });
    // Unbounded is unbounded: a resource of any form is not refused for its form.
    await expectValid(t.verifier, { key: key.secret, resource: 'site:plant-7/../plant-8' });
  });

  it('comes before RATE_LIMITED, and a refused request uses none of the limit', async () => {
    const t = await tenant('boundfirst');
    const { key } = await accountWithKey(
      t,
      { boundaries: ['site:plant-7'] },
      { rateLimit: { limit: 1, windowSeconds: 3600 } },
    );
    for (let i = 0; i < 3; i++) {
      await expectCode(t.verifier, { key: key.secret, resource: 'site:plant-70' }, 'OUT_OF_BOUNDARY');
    }
    const ok = await expectValid(t.verifier, { key: key.secret, resource: 'site:plant-7' });
    expect(ok.body.rateLimit.remaining).toBe(0);
    await expectCode(t.verifier, { key: key.secret, resource: 'site:plant-7' }, 'RATE_LIMITED');
    await expectCode(t.verifier, { key: key.secret, resource: 'site:plant-70' }, 'OUT_OF_BOUNDARY');
  });
});

describe('RATE_LIMITED', () => {
  it('admits `limit` verifications in a window, counting down, then refuses until the next window', async () => {
    const t = await tenant('ratelimit');
    const { key } = await accountWithKey(t, {}, { rateLimit: { limit: 3, windowSeconds: 60 } });
    const remaining: number[] = [];
    let resetAt = '';
    for (let i = 0; i < 3; i++) {
      const res = await expectValid(t.verifier, { key: key.secret });
      remaining.push(res.body.rateLimit.remaining);
      resetAt = res.body.rateLimit.resetAt;
    }
    expect(remaining).toEqual([2, 1, 0]);
    await expectCode(t.verifier, { key: key.secret }, 'RATE_LIMITED');
    await expectCode(t.verifier, { key: key.secret }, 'RATE_LIMITED');
    api.clock.set(new Date(Date.parse(resetAt) - 1));
    await expectCode(t.verifier, { key: key.secret }, 'RATE_LIMITED');
    api.clock.set(resetAt);
    const res = await expectValid(t.verifier, { key: key.secret });
    expect(res.body.rateLimit.remaining).toBe(2);
    expect(Date.parse(res.body.rateLimit.resetAt)).toBe(Date.parse(resetAt) + 60_000);
  });

  it('counts each key on its own', async () => {
    const t = await tenant('rlperkey');
    const { account, key } = await accountWithKey(t, {}, { rateLimit: { limit: 1, windowSeconds: 60 } });
    const other = await issueKey(t, account.id, { rateLimit: { limit: 1, windowSeconds: 60 } });
    await expectValid(t.verifier, { key: key.secret });
    await expectCode(t.verifier, { key: key.secret }, 'RATE_LIMITED');
    await expectValid(t.verifier, { key: other.secret });
  });

  it('holds across two API instances sharing the database and Redis', async () => {
    const t = await tenant('rltwo');
    const { key } = await accountWithKey(t, {}, { rateLimit: { limit: 3, windowSeconds: 3600 } });
    const second = await secondApp();
    try {
      const r1 = await expectValid(t.verifier, { key: key.secret });
      const r2 = await verify(t.verifier, { key: key.secret }, second.http);
      expect(r2.status).toBe(200);
      expect(r2.body).toEqual(expect.objectContaining({ valid: true, keyId: key.id }));
      const r3 = await expectValid(t.verifier, { key: key.secret });
      expect([r1.body.rateLimit.remaining, r2.body.rateLimit.remaining, r3.body.rateLimit.remaining]).toEqual(
        [2, 1, 0],
      );
      const refused = await verify(t.verifier, { key: key.secret }, second.http);
      expect(refused.body).toEqual({ valid: false, code: 'RATE_LIMITED' });
      await expectCode(t.verifier, { key: key.secret }, 'RATE_LIMITED');
      expect(second.serverErrors()).toEqual([]);
    } finally {
      await second.app.close();
    }
  });

  it('admits exactly `limit` of many parallel verifications', async () => {
    const t = await tenant('rlrace');
    const { key } = await accountWithKey(t, {}, { rateLimit: { limit: 5, windowSeconds: 3600 } });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => verify(t.verifier, { key: key.secret })),
    );
    expect(answers.every((r) => r.status === 200)).toBe(true);
    const valid = answers.filter((r) => r.body.valid === true);
    expect(valid).toHaveLength(5);
    expect(valid.map((r) => r.body.rateLimit.remaining).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(answers.filter((r) => r.body.code === 'RATE_LIMITED')).toHaveLength(15);
  });
});

describe('who may verify, and the body', () => {
  it('admits a verifier and an admin; refuses an auditor and an approver (403) and no credential (401)', async () => {
    const t = await createTenant(api, unique('roles'));
    const fixture: Fixture = { tenantId: t.tenantId, admin: bearer(t.admin), verifier: bearer('') };
    const { key } = await accountWithKey(fixture);
    await expectValid(bearer(await t.token('verifier')), { key: key.secret });
    await expectValid(bearer(t.admin), { key: key.secret });
    expectProblem(await verify(bearer(await t.token('auditor')), { key: key.secret }), 403, 'FORBIDDEN');
    expectProblem(await verify(bearer(await t.token('approver')), { key: key.secret }), 403, 'FORBIDDEN');
    expectProblem(await api.http.post('/v1/verify').send({ key: key.secret }), 401, 'UNAUTHENTICATED');
    expectProblem(await verify(bearer('kwop_not-a-token'), { key: key.secret }), 401, 'UNAUTHENTICATED');
    // The key being verified is not a credential for verifying.
    expectProblem(await verify(bearer(key.secret), { key: key.secret }), 403, 'FORBIDDEN');
  });

  it('answers 400 for a body of the wrong shape, and 200 MALFORMED for any string key', async () => {
    const t = await tenant('shape');
    const { key } = await accountWithKey(t);
    const bad: unknown[] = [
      {},
      { key: 42 },
      { key: null },
      { key: ['kw_live_x'] },
      { key: { value: key.secret } },
      { key: key.secret, extra: 1 },
      { key: key.secret, scope: 7 },
      { key: key.secret, resource: ['site:a'] },
      { key: key.secret, environment: true },
      { key: key.secret, source: 'helpdesk' },
      { key: key.secret, source: { ip: 10 } },
      { key: key.secret, source: { ip: '10.0.0.1', port: 443 } },
      { key: key.secret, scope: 'a'.repeat(201) },
      { key: key.secret, resource: 'a'.repeat(2049) },
      [{ key: key.secret }],
    ];
    for (const body of bad) {
      const res = await api.http
        .post('/v1/verify')
        .set(t.verifier)
        .send(body as object);
      expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(res.text).not.toContain(key.secret);
    }
    for (const k of ['', ' ', 'null', '{}', '0'.repeat(10_000), 'kw_live_😀']) {
      await expectCode(t.verifier, { key: k }, 'MALFORMED');
    }
    const notJson = await api.http
      .post('/v1/verify')
      .set(t.verifier)
      .set('Content-Type', 'text/plain')
      .send(key.secret);
    expectProblem(notJson, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('unknown fields named like Object.prototype members', () => {
  // class-transformer skips these names when it builds the DTO, so the whitelist alone never sees them;
  // the JSON parser refuses them (apps/api/src/http/body-parsing.ts).
  it('are refused as 400 like any other unknown field', async () => {
    const t = await tenant('protonames');
    const answers: string[] = [];
    const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'];
    for (const name of names) {
      for (const raw of [`{"key":"abc","${name}":{}}`, `{"key":"abc","source":{"${name}":"x"}}`]) {
        const res = await api.http
          .post('/v1/verify')
          .set(t.verifier)
          .set('Content-Type', 'application/json')
          .send(raw);
        answers.push(`${raw} -> ${res.status}`);
      }
    }
    expect(answers).toEqual(answers.map((a) => a.replace(/-> \d+$/, '-> 400')));
  });
});

describe('null in an optional field', () => {
  // @IsOptional() would let null through, and the verifier reads a present field as a string: a
  // bounded or wildcard key then threw (500). The DTO uses @OptionalNotNull().
  it('is refused as 400 for a bounded key, never a 500', async () => {
    const t = await tenant('nullresource');
    const { key } = await accountWithKey(t, { boundaries: ['site:plant-7'] });
    expectProblem(await verify(t.verifier, { key: key.secret, resource: null }), 400, 'VALIDATION_FAILED');
  });

  it('is refused as 400 for a wildcard key, never a 500', async () => {
    const t = await tenant('nullscope');
    const { key } = await accountWithKey(
      t,
      { environment: 'staging', allowedScopes: ['tickets:*'] },
      { scopes: ['tickets:*'] },
    );
    expectProblem(await verify(t.verifier, { key: key.secret, scope: null }), 400, 'VALIDATION_FAILED');
  });

  it('is refused as 400 in every optional field: null is not a string (nor an object)', async () => {
    const t = await tenant('nullfields');
    const { key } = await accountWithKey(t);
    const nulls = [
      { scope: null },
      { resource: null },
      { environment: null },
      { source: null },
      { source: { ip: null } },
      { source: { system: null } },
    ];
    const answers: string[] = [];
    for (const extra of nulls) {
      const res = await verify(t.verifier, { key: key.secret, ...extra });
      answers.push(`${JSON.stringify(extra)} -> ${res.status} ${res.body.code}`);
    }
    expect(answers).toEqual(nulls.map((extra) => `${JSON.stringify(extra)} -> 400 VALIDATION_FAILED`));
  });
});

describe('failing closed', () => {
  /** A TCP relay to `port` that the test can cut, as a network partition would. */
  async function relay(port: number): Promise<{ port: number; cut: () => Promise<void> }> {
    const sockets = new Set<Socket>();
    const server: Server = createServer((client) => {
      const upstream = connect(port, '127.0.0.1');
      sockets.add(client);
      sockets.add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('relay has no port');
    return {
      port: address.port,
      cut: async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
      },
    };
  }

  it('answers 503, never valid, when PostgreSQL goes away under a running instance', async () => {
    const t = await tenant('pgdown');
    const { key } = await accountWithKey(t);
    const url = new URL(api.config.databaseUrl);
    const pg = await relay(Number(url.port || 5432));
    url.port = String(pg.port);
    const second = await secondApp({ databaseUrl: url.toString() });
    try {
      const before = await verify(t.verifier, { key: key.secret }, second.http);
      expect(before.body).toEqual(expect.objectContaining({ valid: true }));
      await pg.cut();
      for (let i = 0; i < 3; i++) {
        const res = await verify(t.verifier, { key: key.secret }, second.http);
        expectProblem(res, 503, 'UNAVAILABLE');
        expect(res.body.valid).toBeUndefined();
        expect(res.headers['retry-after']).toBeDefined();
      }
      expect(second.serverErrors()).toEqual([]);
    } finally {
      await second.app.close();
    }
  });

  it('answers 503, never valid, when the instance has lost its PostgreSQL pool (as during shutdown)', async () => {
    const t = await tenant('pgdestroyed');
    const { key } = await accountWithKey(t);
    const second = await secondApp();
    try {
      expect((await verify(t.verifier, { key: key.secret }, second.http)).body.valid).toBe(true);
      await second.app.get<Db>(DB).destroy();
      const res = await verify(t.verifier, { key: key.secret }, second.http);
      expect(res.body.valid).not.toBe(true);
      expectProblem(res, 503, 'UNAVAILABLE');
    } finally {
      await second.app.close().catch(() => undefined);
    }
  });

  /** Holds the keys table, so a verify lookup waits on the lock; returns the release. */
  async function holdKeysTable(): Promise<() => Promise<void>> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let done!: Promise<void>;
    await new Promise<void>((lockTaken) => {
      done = api.database.db
        .transaction()
        .execute(async (trx) => {
          await sql`lock table keys in access exclusive mode`.execute(trx);
          lockTaken();
          await released;
        })
        .catch(() => undefined);
    });
    return async () => {
      release();
      await done;
    };
  }

  /** The PostgreSQL session of the one verify lookup waiting on the lock. */
  async function waitingLookup(): Promise<number> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await sql<{ pid: number }>`
        select pid from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and query ilike '%from "keys"%'`.execute(
        api.database.db,
      );
      if (rows.length === 1) return rows[0].pid;
      if (Date.now() > deadline)
        throw new Error(`no single verify lookup waiting on the lock: ${rows.length}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async function terminate(pid: number): Promise<void> {
    await sql`select pg_terminate_backend(${pid})`.execute(api.database.db);
  }

  async function untilGone(pid: number): Promise<void> {
    for (;;) {
      const { rows } = await sql`select 1 from pg_stat_activity where pid = ${pid}`.execute(api.database.db);
      if (rows.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Answers valid again within a few seconds: the instance recovers from a lost session. */
  async function recovers(http: ReturnType<typeof request>, auth: Headers, key: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const res = await verify(auth, { key }, http);
      if (res.status === 200) {
        expect(res.body.valid).toBe(true);
        return;
      }
      expectProblem(res, 503, 'UNAVAILABLE');
      if (Date.now() > deadline) throw new Error('the instance did not recover');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("answers 503 when the key's lookup itself fails after the caller was authenticated", async () => {
    const t = await tenant('lookupdown');
    const { key } = await accountWithKey(t);
    // The guard has passed (it reads operators); the lookup waits on the lock and its session ends.
    const release = await holdKeysTable();
    const pending = verify(t.verifier, { key: key.secret });
    let pid: number;
    try {
      pid = await waitingLookup();
      await terminate(pid);
    } finally {
      await release();
    }
    const answer = await pending;
    expectProblem(answer, 503, 'UNAVAILABLE');
    expect(answer.body.valid).toBeUndefined();
    await untilGone(pid);
    await recovers(api.http, t.verifier, key.secret);
    expect(newServerErrors(api).filter((line) => !line.endsWith(' 503'))).toEqual([]);
  });

  it('survives a PostgreSQL session that ends while its connection is handed to the next request', async () => {
    // pg emits 'error' on a checked-out client whose server session ends; pg-pool listens only
    // while the client is idle. With a pool of one, the dead client goes straight to the next
    // request, and the 'error' arrives while nobody listens: an uncaught exception, which would
    // end the process (jest reports it as "Unhandled error ... Connection terminated unexpectedly").
    const t = await tenant('sessionend');
    const { key } = await accountWithKey(t);
    const logStream = new PassThrough();
    const lines: string[] = [];
    logStream.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    // The key cache off: every verify must look the key up in PostgreSQL for this to be tested.
    const config = { ...api.config, keyCacheTtlMs: 0 };
    const app = await createApi({ config, clock: api.clock, logStream, dbPoolSize: 1 });
    await app.listen(0, '127.0.0.1');
    const server = app.getHttpServer() as Server;
    const { port } = server.address() as { port: number };
    const http = request(`http://127.0.0.1:${port}`);
    const connections = () => new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n)));
    try {
      expect((await verify(t.verifier, { key: key.secret }, http)).body.valid).toBe(true);
      for (let round = 0; round < 5; round++) {
        const release = await holdKeysTable();
        let first: Promise<Response>;
        let second: Promise<Response>;
        try {
          first = verify(t.verifier, { key: key.secret }, http);
          // The lookup of the first holds the only connection, waiting on the lock ...
          const pid = await waitingLookup();
          // ... and the second queues for that connection (its guard reads operators).
          second = verify(t.verifier, { key: key.secret }, http);
          while ((await connections()) < 2) await new Promise((resolve) => setImmediate(resolve));
          for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
          await terminate(pid);
        } finally {
          await release();
        }
        const [a, b] = await Promise.all([first, second]);
        expectProblem(a, 503, 'UNAVAILABLE');
        expect([200, 503]).toContain(b.status);
        expect(b.body.valid === true || b.status === 503).toBe(true);
        await recovers(http, t.verifier, key.secret);
      }
      const errors = lines
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { res?: { statusCode?: number } })
        .filter((entry) => (entry.res?.statusCode ?? 0) >= 500 && entry.res?.statusCode !== 503);
      expect(errors).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('answers 503, never valid, for a rate-limited key when Redis cannot be reached', async () => {
    const t = await tenant('redisdown');
    const { key } = await accountWithKey(t, {}, { rateLimit: { limit: 100, windowSeconds: 60 } });
    const second = await secondApp({ redisUrl: 'redis://127.0.0.1:1' });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await verify(t.verifier, { key: key.secret }, second.http);
        expectProblem(res, 503, 'UNAVAILABLE');
        expect(res.body.valid).toBeUndefined();
      }
      // A refusal decided before the rate limit needs no Redis.
      const refused = await verify(t.verifier, { key: key.secret, scope: 'other:read' }, second.http);
      expect(refused.body).toEqual({ valid: false, code: 'INSUFFICIENT_SCOPE' });
      expect(second.serverErrors()).toEqual([]);
    } finally {
      await second.app.close();
    }
  });
});

describe('secrets', () => {
  async function everyRowText(): Promise<string> {
    const db = api.database.db;
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(db);
    const names = tables.rows.map((r) => r.table_name);
    for (const required of ['events', 'keys', 'service_accounts', 'streams', 'operators']) {
      expect(names).toContain(required);
    }
    const parts: string[] = [];
    for (const name of names) {
      const { rows } = await sql<{ row: string }>`select t::text as row from ${sql.table(name)} t`.execute(
        db,
      );
      parts.push(...rows.map((r) => r.row));
    }
    return parts.join('\n');
  }

  async function everyRedisText(): Promise<string> {
    const redis = new Redis(api.config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      const keys = await redis.keys(`${api.config.redisPrefix}*`);
      const parts = [...keys];
      for (const k of keys) {
        const type = await redis.type(k);
        if (type === 'string') parts.push((await redis.get(k)) ?? '');
        else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(k)));
        else if (type === 'zset') parts.push(...(await redis.zrange(k, 0, -1)));
        else if (type === 'set') parts.push(...(await redis.smembers(k)));
        else if (type === 'list') parts.push(...(await redis.lrange(k, 0, -1)));
        else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(k, '-', '+')));
      }
      return parts.join('\n');
    } finally {
      redis.disconnect();
    }
  }

  it('no secret issued in a full lifecycle is found in any table, log line, Redis key or later answer', async () => {
    const t = await createTenant(api, unique('secrets'));
    const verifierToken = await t.token('verifier');
    const fixture: Fixture = {
      tenantId: t.tenantId,
      admin: bearer(t.admin),
      verifier: bearer(verifierToken),
    };
    const answers: Response[] = [];
    const record = (res: Response) => {
      answers.push(res);
      return res;
    };
    const account = await createAccount(fixture, {
      allowedCidrs: ['10.20.0.0/16'],
      boundaries: ['site:plant-7'],
    });
    const first = await issueKey(fixture, account.id, { rateLimit: { limit: 10, windowSeconds: 60 } });
    const verifyBody = (key: string) => ({
      key,
      scope: 'tickets:read',
      resource: 'site:plant-7/asset:1',
      environment: 'production',
      source: { ip: '10.20.1.7', system: 'helpdesk' },
    });
    expect(record(await verify(fixture.verifier, verifyBody(first.secret))).body.valid).toBe(true);
    record(await verify(fixture.verifier, { ...verifyBody(first.secret), scope: 'other:read' }));
    record(await verify(fixture.verifier, { ...verifyBody(first.secret), source: { ip: '192.0.2.1' } }));
    record(await verify(fixture.verifier, { key: changeChar(first.secret, first.secret.length - 1) }));
    record(await verify(fixture.verifier, { ...verifyBody(first.secret), unknownField: true }));
    record(await verify(fixture.verifier, { key: first.secret, scope: 12 }));
    record(await verify(bearer(t.admin), verifyBody(first.secret)));
    record(await verify(bearer(await t.token('auditor')), verifyBody(first.secret)));
    // The key used as a credential, where it is not allowed and where it is malformed.
    record(await api.http.get('/v1/service-accounts').set(bearer(first.secret)));
    record(await api.http.get('/v1/service-accounts').set(bearer(`${first.secret}x`)));
    record(await api.http.get(`/v1/keys/${first.id}`).set(fixture.admin));
    record(await api.http.get(`/v1/keys?prefix=${first.prefix}`).set(fixture.admin));
    record(await api.http.get(`/v1/service-accounts/${account.id}/keys`).set(fixture.admin));
    const rotated = await api.http
      .post(`/v1/keys/${first.id}/rotate`)
      .set(fixture.admin)
      .send({ gracePeriodSeconds: 600, reason: 'scheduled' });
    expect(rotated.status).toBe(201);
    const second = rotated.body as IssuedKey;
    const answersAfterRotation = answers.length;
    expect(record(await verify(fixture.verifier, verifyBody(second.secret))).body.valid).toBe(true);
    expect(record(await verify(fixture.verifier, verifyBody(first.secret))).body.valid).toBe(true);
    // The new key is found on a paste site and reported: matched by hash, revoked, never stored.
    const exposed = record(
      await api.http
        .post('/v1/exposures')
        .set(fixture.admin)
        .send({ key: second.secret, url: 'https://paste.example/abc', source: 'scanner' }),
    );
    expect(exposed.status).toBeLessThan(300);
    record(
      await api.http
        .post('/v1/exposures')
        .set(fixture.admin)
        .send([
          { token: first.secret, type: 'keyward_key', url: 'https://github.com/x/y', source: 'content' },
        ]),
    );
    record(await api.http.post(`/v1/keys/${first.id}/revoke`).set(fixture.admin).send({ reason: 'done' }));
    record(await api.http.post(`/v1/keys/${second.id}/revoke`).set(fixture.admin).send({ emergency: true }));
    expect(record(await verify(fixture.verifier, verifyBody(first.secret))).body.code).toBe('REVOKED');
    expect(record(await verify(fixture.verifier, verifyBody(second.secret))).body.code).toBe('REVOKED');
    record(await api.http.get(`/v1/keys/${second.id}`).set(fixture.admin));
    record(await api.http.get(`/v1/service-accounts/${account.id}/keys`).set(fixture.admin));
    record(await api.http.get(`/v1/service-accounts/${account.id}`).set(fixture.admin));
    record(await api.http.get(`/v1/service-accounts/${account.id}/history`).set(fixture.admin));
    record(await api.http.get(`/v1/keys/${first.id}/history`).set(fixture.admin));
    record(await api.http.get('/v1/events').set(fixture.admin));
    record(await api.http.get('/v1/reports/credentials').set(fixture.admin));
    record(await api.http.get('/v1/reports/credentials').set(fixture.admin).set('Accept', 'text/csv'));
    record(await api.http.get('/metrics'));

    // Usage counted for all of the above: once in Redis (searched there), then half of it in
    // PostgreSQL too (searched in the tables).
    await api.app.get(UsageBuffer).flush();
    const redisWithUsage = await everyRedisText();
    expect(redisWithUsage).toContain(first.id);
    await flushUsage(api.database.db, new UsageCounters(api.app.get<Redis>(REDIS), api.config.redisPrefix));
    record(await api.http.get(`/v1/usage?keyId=${first.id}`).set(fixture.admin));

    const text = (res: Response) => `${res.status} ${JSON.stringify(res.headers)} ${res.text}`;
    const laterThanFirst = answers.map(text).join('\n');
    const laterThanSecond = answers.slice(answersAfterRotation).map(text).join('\n');
    const rows = await everyRowText();
    const logs = api.logs();
    const redis = `${redisWithUsage}\n${await everyRedisText()}`;
    expect(logs.length).toBeGreaterThan(0);
    const usageRows = await api.database.db.selectFrom('usage_minutes').select('key_id').execute();
    expect(usageRows.map((r) => r.key_id)).toContain(first.id); // the tables searched hold usage
    expect(rows).toContain(first.prefix); // the search does see the tables
    const secrets = [
      { name: 'first key', value: first.secret, prefix: first.prefix, answers: laterThanFirst },
      { name: 'rotated key', value: second.secret, prefix: second.prefix, answers: laterThanSecond },
    ];
    for (const { name, value, prefix, answers: later } of secrets) {
      // The whole key, and its random part alone (a log that cut the prefix off would still leak it).
      const randomPart = value.slice(prefix.length, prefix.length + 33);
      for (const needle of [value, randomPart]) {
        expect({ name, where: 'tables', found: rows.includes(needle) }).toEqual({
          name,
          where: 'tables',
          found: false,
        });
        expect({ name, where: 'logs', found: logs.includes(needle) }).toEqual({
          name,
          where: 'logs',
          found: false,
        });
        expect({ name, where: 'redis', found: redis.includes(needle) }).toEqual({
          name,
          where: 'redis',
          found: false,
        });
        expect({ name, where: 'answers', found: later.includes(needle) }).toEqual({
          name,
          where: 'answers',
          found: false,
        });
      }
    }
    for (const token of [t.admin, verifierToken]) {
      expect(rows.includes(token)).toBe(false);
      expect(logs.includes(token)).toBe(false);
      expect(laterThanFirst.includes(token)).toBe(false);
    }
  });
});
