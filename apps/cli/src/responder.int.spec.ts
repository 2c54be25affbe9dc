import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { eventView } from '@keyward/audit';
import { toRecordedEvent } from '@keyward/event-store';
import { checkOf } from '@keyward/keys';
import { bearer, createTenant, startTestApi, type TestApi } from '../../../test/support/api';
import { Progress } from './progress';

/**
 * The incident responder's commands (history, state, access, export, integrity, identify) as a
 * person runs them: a real child process against a database the real HTTP app filled, so each
 * JSON answer is compared with the API's own answer for the same question. Redis points at a port
 * that refuses: none of these commands may need it (a responder may be looking at why it is down).
 * Spawns cost 1 to 2 s each, so each run's output is checked for several things.
 */
const ROOT = resolve(__dirname, '../../..');
const EXIT_TIMEOUT_MS = 30_000;
jest.setTimeout(120_000);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STACK_LINE = /^\s+at /m;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

let api: TestApi;

/** Runs the CLI; `input`, when given, is its stdin (else stdin is /dev/null). */
function cli(args: string[], input?: string): Promise<CliRun> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        '-r',
        'tsconfig-paths/register',
        'apps/cli/src/main.ts',
        ...args,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: api.database.url, REDIS_URL: 'redis://127.0.0.1:1' },
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (input !== undefined) child.stdin!.end(input);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(
        new Error(
          `keyward ${args.join(' ')} did not exit within ${EXIT_TIMEOUT_MS} ms\n${stdout}\n${stderr}`,
        ),
      );
    }, EXIT_TIMEOUT_MS);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** The tenant's stored events in commit order: the order the export promises. */
async function eventsInCommitOrder(tenantId: string) {
  return api.database.db
    .selectFrom('events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('transaction_id')
    .orderBy('position')
    .execute();
}

/**
 * Waits until every committed event of the tenant is below the feed's horizon: sessions of other
 * test files share the cluster's transaction ids and can hold it back for a moment, and an export
 * shows only what is below it.
 */
async function caughtUp(tenantId: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await sql<{ behind: boolean }>`
      select exists (select 1 from events where tenant_id = ${tenantId}
        and transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) as behind`.execute(api.database.db);
    if (!rows[0].behind) return;
    if (Date.now() > deadline) throw new Error(`the feed of ${tenantId} never caught up`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** The history every test reads: made through the API, on a clock a day behind the real one. */
interface World {
  auditor: Record<string, string>;
  adminActor: string;
  account: string;
  /** k1: tickets:read, live now; k2: tickets:read and invoices:read, revoked. */
  k1: { id: string; prefix: string; secret: string };
  k2: { id: string; prefix: string; secret: string };
  globex: { account: string; key: string };
  t: { created: Date; granted: Date; k1: Date; k2: Date; revoked: Date };
}

let w: World;

beforeAll(async () => {
  api = await startTestApi();
  // A day ago, so keys are live at the real now the CLI answers for.
  api.clock.set(new Date(Date.now() - DAY));
  const acme = await createTenant(api, 'acme');
  const admin = bearer(acme.admin);
  const adminOperator = await api.database.db
    .selectFrom('operators')
    .select(['id', 'name'])
    .where('tenant_id', '=', 'acme')
    .where('role', '=', 'admin')
    .executeTakeFirstOrThrow();

  const created = api.clock.now();
  const account = await api.http
    .post('/v1/service-accounts')
    .set(admin)
    .send({
      name: 'billing-sync',
      environment: 'staging',
      businessOwner: 'finance-ops',
      technicalOwner: 'platform',
      allowedScopes: ['tickets:read'],
      reason: 'ticket OPS-1',
    })
    .expect(201);
  api.clock.advance(HOUR);
  const granted = api.clock.now();
  await api.http
    .post(`/v1/service-accounts/${account.body.id}/scopes`)
    .set(admin)
    .send({ scopes: ['invoices:read'], reason: 'ticket OPS-7' })
    .expect(200);
  api.clock.advance(HOUR);
  const k1Issued = api.clock.now();
  const k1 = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(admin)
    .send({ name: 'sync-worker', scopes: ['tickets:read'], expiresInDays: 30 })
    .expect(201);
  api.clock.advance(HOUR);
  const k2Issued = api.clock.now();
  const k2 = await api.http
    .post(`/v1/service-accounts/${account.body.id}/keys`)
    .set(admin)
    .send({ name: 'invoice-reader', scopes: ['tickets:read', 'invoices:read'], expiresInDays: 30 })
    .expect(201);
  api.clock.advance(HOUR);
  const revoked = api.clock.now();
  await api.http
    .post(`/v1/keys/${k2.body.id}/revoke`)
    .set(admin)
    .send({ reason: 'leaked in a CI log' })
    .expect(200);
  api.clock.advance(HOUR);

  const globex = await createTenant(api, 'globex');
  const globexAccount = await api.http
    .post('/v1/service-accounts')
    .set(bearer(globex.admin))
    .send({
      name: 'globex-bot',
      environment: 'staging',
      businessOwner: 'ops',
      technicalOwner: 'ops',
      allowedScopes: ['tickets:read'],
    })
    .expect(201);
  const globexKey = await api.http
    .post(`/v1/service-accounts/${globexAccount.body.id}/keys`)
    .set(bearer(globex.admin))
    .send({ name: 'globex-key', scopes: ['tickets:read'], expiresInDays: 30 })
    .expect(201);

  const keyOf = (res: { body: { id: string; prefix: string; secret: string } }) => ({
    id: res.body.id,
    prefix: res.body.prefix,
    secret: res.body.secret,
  });
  w = {
    auditor: bearer(await acme.token('auditor')),
    adminActor: `operator:${adminOperator.name} (${adminOperator.id})`,
    account: account.body.id,
    k1: keyOf(k1),
    k2: keyOf(k2),
    globex: { account: globexAccount.body.id, key: globexKey.body.id },
    t: { created, granted, k1: k1Issued, k2: k2Issued, revoked },
  };
});

afterAll(async () => {
  await api?.close();
});

describe('history', () => {
  it("prints an account's events as a table and a key's as the API's JSON, oldest first", async () => {
    const human = await cli(['history', w.account, '--tenant', 'acme']);
    expect(human).toMatchObject({ code: 0, stderr: '' });
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^POSITION\s+VERSION\s+TIME\s+TYPE\s+ACTOR\s+REASON\s+CORRELATION$/);
    const stored = await api.database.db
      .selectFrom('events')
      .selectAll()
      .where('stream_id', '=', w.account)
      .orderBy('stream_version')
      .execute();
    expect(stored.map((e) => e.type)).toEqual(['ServiceAccountCreated', 'ScopesGranted']);
    expect(lines.slice(2)).toHaveLength(stored.length);
    stored.forEach((event, i) => {
      const cells = lines[2 + i].split(/\s{2,}/);
      expect(cells.slice(0, 4)).toEqual([
        event.position,
        String(i + 1),
        event.occurred_at.toISOString(),
        event.type,
      ]);
      expect(lines[2 + i]).toContain(w.adminActor);
      expect(lines[2 + i]).toContain((event.metadata as { correlationId: string }).correlationId);
    });
    expect(lines[2]).toContain('ticket OPS-1');
    expect(lines[3]).toContain('ticket OPS-7');

    const json = await cli(['--json', 'history', w.k2.id, '--tenant', 'acme']);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const http = await api.http.get(`/v1/keys/${w.k2.id}/history`).set(w.auditor).expect(200);
    expect(http.body.nextCursor).toBeNull();
    expect(JSON.parse(json.stdout)).toEqual({ items: http.body.items });
    expect(http.body.items.map((e: { type: string }) => e.type)).toEqual(['KeyIssued', 'KeyRevoked']);
  });

  it("answers NOT_FOUND for another tenant's id or a missing tenant, and a usage error for an id of neither kind", async () => {
    const other = await cli(['history', w.globex.account, '--tenant', 'acme']);
    expect(other).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: no service account ${w.globex.account} in tenant acme\n`,
    });

    const noTenant = await cli(['--json', 'history', w.account, '--tenant', 'nowhere']);
    expect(noTenant.code).toBe(1);
    expect(noTenant.stdout).toBe('');
    expect(JSON.parse(noTenant.stderr)).toEqual({
      error: { code: 'NOT_FOUND', message: 'no tenant nowhere' },
    });

    const neither = await cli(['history', 'op_AAAAAAAAAAAAAAAAAAAA', '--tenant', 'acme']);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/expected a service account id \(sa_\.\.\.\) or a key id \(key_\.\.\.\)/);
    expect(neither.stderr).not.toMatch(STACK_LINE);
  });
});

describe('state', () => {
  it('prints the account and its keys as they stood then', async () => {
    const asOf = new Date(w.t.k1.getTime() + 30 * MINUTE).toISOString();
    const run = await cli(['state', w.account, '--tenant', 'acme', '--as-of', asOf]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const out = run.stdout;
    expect(out).toMatch(new RegExp(`^account\\s+${w.account} \\(billing-sync\\)$`, 'm'));
    expect(out).toMatch(new RegExp(`^as of\\s+${asOf.replace(/\./g, '\\.')}$`, 'm'));
    expect(out).toMatch(/^status\s+active \(version 2\)$/m);
    // Scopes are kept sorted.
    expect(out).toMatch(/^allowed scopes\s+invoices:read,tickets:read$/m);
    expect(out).toMatch(/^live keys\s+1 of 1$/m);
    expect(out).toMatch(/^ID\s+PREFIX\s+NAME\s+STATUS\s+SCOPES\s+EXPIRES$/m);
    expect(out).toMatch(
      new RegExp(`^${w.k1.id}\\s+${w.k1.prefix}\\s+sync-worker\\s+active\\s+tickets:read\\s+\\S+Z$`, 'm'),
    );
    // k2 was issued later: not there yet.
    expect(out).not.toContain(w.k2.id);
  });

  it("answers now by default, in the API's JSON shape", async () => {
    const run = await cli(['--json', 'state', w.account, '--tenant', 'acme']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const answer = JSON.parse(run.stdout) as { asOf: string; keys: { id: string; status: string }[] };
    expect(Date.now() - Date.parse(answer.asOf)).toBeLessThan(60_000);
    expect(answer.keys.map((k) => [k.id, k.status])).toEqual([
      [w.k1.id, 'active'],
      [w.k2.id, 'revoked'],
    ]);
    // The API asked about the same instant answers the same document.
    api.clock.set(new Date(Date.now() + MINUTE));
    const http = await api.http
      .get(`/v1/service-accounts/${w.account}/state`)
      .query({ asOf: answer.asOf })
      .set(w.auditor)
      .expect(200);
    expect(answer).toEqual(http.body);
  });

  it('answers NOT_FOUND before the account existed, and refuses a time without its zone as a usage error', async () => {
    const before = new Date(w.t.created.getTime() - MINUTE).toISOString();
    const early = await cli(['state', w.account, '--tenant', 'acme', '--as-of', before]);
    expect(early).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: no service account ${w.account} in tenant acme at ${before}\n`,
    });

    const zoneless = await cli(['state', w.account, '--tenant', 'acme', '--as-of', '2026-03-01T09:00']);
    expect(zoneless.code).toBe(2);
    expect(zoneless.stdout).toBe('');
    expect(zoneless.stderr).toMatch(/^error: option '--as-of <time>' argument '2026-03-01T09:00' is invalid/);
  });
});

describe('access', () => {
  it('lists the keys that could use a scope then, with the events that granted it, as a table or as the API answers', async () => {
    const asOf = new Date(w.t.k2.getTime() + 30 * MINUTE).toISOString();
    const human = await cli(['access', '--tenant', 'acme', '--scope', 'invoices:read', '--as-of', asOf]);
    expect(human).toMatchObject({ code: 0, stderr: '' });
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`1 key in tenant acme could use invoices:read as of ${asOf}`);
    expect(lines[2]).toMatch(/^ACCOUNT\s+KEY\s+STATUS\s+MATCHING SCOPES\s+GRANTED BY$/);
    expect(lines).toHaveLength(5);
    const [grant, issued] = await api.database.db
      .selectFrom('events')
      .select(['position', 'type'])
      .where('type', 'in', ['ScopesGranted', 'KeyIssued'])
      .where('stream_id', 'in', [w.account, w.k2.id])
      .orderBy('position')
      .execute();
    expect(lines[4].split(/\s{2,}/)).toEqual([
      `billing-sync (${w.account})`,
      `invoice-reader (${w.k2.id})`,
      'active',
      'invoices:read',
      `ceiling: #${grant.position} ScopesGranted by ${w.adminActor}; key: #${issued.position} KeyIssued by ${w.adminActor}`,
    ]);

    const json = await cli([
      '--json',
      'access',
      '--tenant',
      'acme',
      '--scope',
      'tickets:read',
      '--as-of',
      asOf,
    ]);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const http = await api.http
      .get('/v1/access')
      .query({ scope: 'tickets:read', asOf })
      .set(w.auditor)
      .expect(200);
    expect(JSON.parse(json.stdout)).toEqual(http.body);
    expect(http.body.items.map((i: { key: { id: string } }) => i.key.id)).toEqual([w.k1.id, w.k2.id]);
  });

  it('refuses a malformed scope as a usage error', async () => {
    const run = await cli(['access', '--tenant', 'acme', '--scope', 'Tickets read']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/expected a scope such as tickets:read/);
  });
});

describe('export', () => {
  let dir: string;
  let expected: string[];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyward-export-'));
    await caughtUp('acme');
    expected = (await eventsInCommitOrder('acme')).map((row) =>
      JSON.stringify(eventView(toRecordedEvent(row))),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('streams the NDJSON on stdout (in --json mode too) with progress on stderr only', async () => {
    const run = await cli(['--json', 'export', '--tenant', 'acme']);
    expect(run.code).toBe(0);
    expect(run.stdout.endsWith('\n')).toBe(true);
    const lines = run.stdout.slice(0, -1).split('\n');
    // Every event once, in commit order, each the API's event view.
    expect(lines).toEqual(expected);
    expect(run.stderr).toMatch(new RegExp(`^export: ${expected.length} events in \\d+\\.\\d s`, 'm'));
  });

  it('writes a new owner-only file and says so; refuses to overwrite one', async () => {
    const file = join(dir, 'acme.ndjson');
    const run = await cli(['export', '--tenant', 'acme', '--to-file', file]);
    expect(run.code).toBe(0);
    const last = JSON.parse(expected[expected.length - 1]).position as number;
    expect(run.stdout).toBe(
      `exported ${expected.length} events to ${file} (last position ${last}; continue with --after ${last})\n`,
    );
    expect(run.stderr).toMatch(new RegExp(`^export: ${expected.length} events in`, 'm'));
    expect(readFileSync(file, 'utf8')).toBe(`${expected.join('\n')}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['acme.ndjson']);

    const again = await cli(['export', '--tenant', 'acme', '--to-file', file]);
    expect(again).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: ${file} exists: an export does not overwrite a file\n`,
    });
    expect(readFileSync(file, 'utf8')).toBe(`${expected.join('\n')}\n`);
  });

  it('continues --after a position in commit order, filtered by --type, and summarises as JSON', async () => {
    const file = join(dir, 'keys.ndjson');
    const after = JSON.parse(expected[2]).position as number;
    const wanted = expected
      .slice(3)
      .filter((line) => ['KeyIssued', 'KeyRevoked'].includes(JSON.parse(line).type as string));
    expect(wanted).toHaveLength(3);
    const run = await cli([
      '--json',
      'export',
      '--tenant',
      'acme',
      '--after',
      String(after),
      '--type',
      'KeyIssued,KeyRevoked',
      '--to-file',
      file,
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      file,
      events: 3,
      lastPosition: JSON.parse(wanted[2]).position,
    });
    expect(readFileSync(file, 'utf8')).toBe(`${wanted.join('\n')}\n`);
  });
});

describe('identify', () => {
  /** Everything a verify or a write would change. */
  async function footprint() {
    const count = async (
      table: 'events' | 'usage_minutes' | 'usage_batches' | 'key_usage' | 'account_usage',
    ) =>
      (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(api.database.db))
        .rows[0].n;
    return {
      events: await count('events'),
      usageMinutes: await count('usage_minutes'),
      usageBatches: await count('usage_batches'),
      keyUsage: await count('key_usage'),
      accountUsage: await count('account_usage'),
      keys: await api.database.db
        .selectFrom('keys')
        .select(['id', 'version', 'updated_at'])
        .orderBy('id')
        .execute(),
    };
  }

  /** The key's secret part: what must appear in no output, alone or in the whole key. */
  const secretPart = (key: string) => key.slice(-39, -6);

  function expectNoSecret(run: CliRun, key: string) {
    for (const text of [run.stdout, run.stderr]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(secretPart(key));
    }
  }

  it('names the key and its account from stdin, writes nothing, and never prints the key', async () => {
    const before = await footprint();

    const human = await cli(['identify'], `${w.k1.secret}\n`);
    expect(human).toMatchObject({ code: 0, stderr: '' });
    expectNoSecret(human, w.k1.secret);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`MATCH: the secret matches the stored hash of ${w.k1.id}`);
    expect(human.stdout).toMatch(new RegExp(`^key\\s+${w.k1.id} \\(${w.k1.prefix}\\)$`, 'm'));
    expect(human.stdout).toMatch(/^name\s+sync-worker$/m);
    expect(human.stdout).toMatch(/^status now\s+active, expires \S+Z$/m);
    expect(human.stdout).toMatch(/^last used\s+never$/m);
    expect(human.stdout).toMatch(
      new RegExp(`^account\\s+${w.account} \\(billing-sync, staging, active\\)$`, 'm'),
    );
    expect(human.stdout).toMatch(/^tenant\s+acme$/m);

    // A revoked key is still named, with its status now; CRLF is stripped like LF.
    const json = await cli(['--json', 'identify', '--tenant', 'acme'], `${w.k2.secret}\r\n`);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    expectNoSecret(json, w.k2.secret);
    expect(JSON.parse(json.stdout)).toEqual({
      matches: true,
      claimedKeyId: w.k2.id,
      tenantId: 'acme',
      key: {
        id: w.k2.id,
        prefix: w.k2.prefix,
        name: 'invoice-reader',
        status: 'revoked',
        environment: 'staging',
        scopes: ['invoices:read', 'tickets:read'],
        expiresAt: expect.stringMatching(/Z$/),
        lastUsedAt: null,
      },
      account: { id: w.account, name: 'billing-sync', environment: 'staging', status: 'active' },
    });

    // In a tenant that is not the key's, it is not found.
    const elsewhere = await cli(['identify', '--tenant', 'globex'], w.k1.secret);
    expect(elsewhere).toEqual({ code: 1, stdout: '', stderr: `error: no key ${w.k1.id} in tenant globex\n` });

    expect(await footprint()).toEqual(before);
  });

  it('reports a well-formed key with a wrong secret as not matching, not as that key', async () => {
    // Another secret under k1's id, with a checksum made to fit: it passes every check but the hash.
    const body = w.k1.secret.slice(0, -6);
    const at = w.k1.prefix.length + 5;
    const forgedBody = `${body.slice(0, at)}${body[at] === 'a' ? 'b' : 'a'}${body.slice(at + 1)}`;
    const forged = `${forgedBody}${checkOf(forgedBody)}`;

    const human = await cli(['identify'], `${forged}\n`);
    expect(human.code).toBe(1);
    expectNoSecret(human, forged);
    expectNoSecret(human, w.k1.secret);
    expect(human.stdout).toMatch(new RegExp(`^NOT A MATCH: the input names key ${w.k1.id} by its id`));
    expect(human.stdout).not.toContain('sync-worker');
    expect(human.stdout).not.toContain('billing-sync');
    expect(human.stderr).toBe(`error: the secret does not match the stored hash of ${w.k1.id}\n`);

    const json = await cli(['--json', 'identify'], forged);
    expect(json.code).toBe(1);
    expectNoSecret(json, forged);
    expect(JSON.parse(json.stdout)).toEqual({
      matches: false,
      claimedKeyId: w.k1.id,
      tenantId: null,
      key: null,
      account: null,
    });
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'KEY_MISMATCH' } });
  });

  it('refuses malformed input and a failed checksum with a message that does not echo it', async () => {
    const last = w.k1.secret.slice(-1);
    const mangled = `${w.k1.secret.slice(0, -1)}${last === 'a' ? 'b' : 'a'}`;
    const checksum = await cli(['identify'], `${mangled}\n`);
    expect(checksum).toEqual({
      code: 1,
      stdout: '',
      stderr:
        "error: the input has a key's form but its checksum does not match: it was mistyped, cut short or altered\n",
    });

    const garbage = `${w.k1.secret.slice(0, 40)} trailing`;
    const malformed = await cli(['--json', 'identify'], garbage);
    expect(malformed.code).toBe(1);
    expect(malformed.stdout).toBe('');
    expect(malformed.stderr).not.toContain(garbage.slice(8, 40));
    expect(JSON.parse(malformed.stderr)).toEqual({
      error: {
        code: 'KEY_UNREADABLE',
        message: `the input (${garbage.length} characters) is not a Keyward key: expected kw_live_, kw_stage_ or kw_dev_ and 59 letters and digits`,
      },
    });
  });

  it('refuses a key given on the command line, as an argument or an option, without printing it', async () => {
    for (const args of [
      ['identify', w.k1.secret],
      ['identify', `--key=${w.k1.secret}`],
    ]) {
      const run = await cli(args);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^error: identify takes no arguments and reads the key from stdin/);
      expectNoSecret(run, w.k1.secret);
    }
  });
});

describe('integrity', () => {
  it("answers ok for an intact chain, then exit 1 and where it breaks after an event was edited behind the service's back", async () => {
    const acme = await eventsInCommitOrder('acme');
    const intact = await cli(['integrity', '--tenant', 'acme']);
    expect(intact).toEqual({
      code: 0,
      stdout: `hash chain of tenant acme intact: ${acme.length} events checked\n`,
      stderr: '',
    });

    // Tamper with globex as the database owner, the one role that can switch the trigger off.
    const globex = await api.database.db
      .selectFrom('events')
      .select('position')
      .where('tenant_id', '=', 'globex')
      .orderBy('position')
      .execute();
    const victim = globex[2].position;
    const db = api.database.db;
    await sql`alter table events disable trigger events_append_only`.execute(db);
    try {
      await sql`update events set data = data || '{"forged": true}'::jsonb where position = ${victim}`.execute(
        db,
      );
    } finally {
      await sql`alter table events enable trigger events_append_only`.execute(db);
    }

    const broken = await cli(['integrity', '--tenant', 'globex']);
    expect(broken).toEqual({
      code: 1,
      stdout: `hash chain of tenant globex BROKEN at position ${victim} (3 events checked): events from there on cannot be trusted\n`,
      stderr: `error: the hash chain of tenant globex is broken at position ${victim}\n`,
    });
    const json = await cli(['--json', 'integrity', '--tenant', 'globex']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ ok: false, checked: 3, brokenAt: Number(victim) });
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'CHAIN_BROKEN' } });
  });
});

describe('projections rebuild', () => {
  it('shows the events replayed and the rate', async () => {
    const run = await cli(['projections', 'rebuild', 'keys']);
    expect(run.code).toBe(0);
    const total = (await sql<{ n: number }>`select count(*)::int as n from events`.execute(api.database.db))
      .rows[0].n;
    expect(run.stderr).toMatch(
      new RegExp(`^  keys: ${total} events replayed in \\d+\\.\\d s \\(\\d+ events/s\\)$`, 'm'),
    );
  });
});

describe('Progress', () => {
  function recorder(isTTY: boolean) {
    const writes: string[] = [];
    return { writes, stream: { isTTY, write: (text: string) => writes.push(text) } };
  }

  it('without a terminal, writes a line each time the count passes a multiple of `every`, and a last one', () => {
    const { writes, stream } = recorder(false);
    let now = 0;
    const progress = new Progress('export', 'events', { stream, every: 10_000, now: () => now });
    // Ten events a millisecond, one at a time.
    for (let count = 1; count <= 25_000; count++) {
      now = count / 10;
      progress.update(count);
    }
    progress.done(25_000);
    expect(writes).toEqual([
      'export: 10000 events, 10000 events/s\n',
      'export: 20000 events, 10000 events/s\n',
      'export: 25000 events in 2.5 s (10000 events/s)\n',
    ]);
  });

  it('counts that jump (batches) write one line per multiple passed, and the unit of the rate is the noun', () => {
    const { writes, stream } = recorder(false);
    let now = 0;
    const progress = new Progress('  keys', 'events replayed', { stream, every: 10_000, now: () => now });
    for (const count of [4_000, 8_000, 34_000, 36_000, 40_000]) {
      now += 1000;
      progress.update(count);
    }
    progress.done(40_000);
    expect(writes).toEqual([
      '  keys: 34000 events replayed, 11333 events/s\n',
      '  keys: 40000 events replayed, 8000 events/s\n',
      '  keys: 40000 events replayed in 5.0 s (8000 events/s)\n',
    ]);
  });

  it('at a terminal, redraws one line at most every redrawMs and ends it with a newline', () => {
    const { writes, stream } = recorder(true);
    let now = 0;
    const progress = new Progress('export', 'events', { stream, redrawMs: 250, now: () => now });
    for (let ms = 1; ms <= 1000; ms++) {
      now = ms;
      progress.update(ms * 10);
    }
    progress.done(10_000);
    expect(writes).toHaveLength(5);
    expect(writes.slice(0, 4).every((w) => w.startsWith('\rexport: ') && !w.includes('\n'))).toBe(true);
    expect(writes[4]).toBe('\rexport: 10000 events in 1.0 s (10000 events/s)\x1b[K\n');
  });
});
