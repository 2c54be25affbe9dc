import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { sql } from 'kysely';
import { Client } from 'pg';
import { SERVICE_ACCOUNT_STREAM, type ServiceAccountCreatedV1 } from '@keyward/accounts';
import { ID_PREFIX, newId, systemClock } from '@keyward/core';
import { createDb } from '@keyward/db';
import { EventStore, type EventMetadata, type NewEvent } from '@keyward/event-store';
import { inlineProjections } from '@keyward/projections';
import { migrations } from '../../../migrations';
import { createTestDatabase, testRedisPrefix, type TestDatabase } from '../../../test/support/database';
import {
  ADMIN_DATABASE_URL,
  TEST_REDIS_URL,
  databaseUrl,
  runDatabasePrefix,
} from '../../../test/support/env';

/**
 * The CLI as an operator runs it: a real child process (ts-node, as `npm run cli` does) against
 * this file's own database and the real Redis. Each run must exit by itself: a handle left open
 * would show as a timeout here. Spawns cost about 1.5 s each, so there are few of them.
 */
const ROOT = resolve(__dirname, '../../..');
// Well under pg's 10 s idle timeout plus start-up, so a pool left open fails here instead of exiting late.
const EXIT_TIMEOUT_MS = 10_000;
// Up to two spawns a test, on a machine that may be busy.
jest.setTimeout(60_000);

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

let t: TestDatabase;
const redisPrefix = testRedisPrefix();

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
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
        env: {
          ...process.env,
          DATABASE_URL: t.url,
          REDIS_URL: TEST_REDIS_URL,
          KEYWARD_REDIS_PREFIX: redisPrefix,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
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

async function adminQuery(text: string): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}

function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

const STACK_LINE = /^\s+at /m;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

describe('migrate', () => {
  const name = `${runDatabasePrefix()}fresh_${randomBytes(6).toString('hex')}`;
  const url = databaseUrl(name);
  afterAll(async () => {
    await adminQuery(`drop database if exists "${name}" with (force)`);
  });

  it('creates a missing database and applies every migration, then finds it up to date', async () => {
    const first = await cli(['migrate'], { DATABASE_URL: url, REDIS_URL: 'redis://127.0.0.1:1' });
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toBe(
      `created database ${name}\n${Object.keys(migrations)
        .map((m) => `applied ${m}\n`)
        .join('')}`,
    );

    const db = createDb(url, { max: 1 });
    try {
      const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
        db,
      );
      expect(applied.rows.map((r) => r.name)).toEqual(Object.keys(migrations));
      const tables = await sql<{ n: number }>`
        select count(*)::int as n from information_schema.tables
        where table_schema = 'public' and table_name in ('events', 'streams', 'tenants', 'operators', 'service_accounts')`.execute(
        db,
      );
      expect(tables.rows[0].n).toBe(5);
    } finally {
      await db.destroy();
    }

    // Again, machine-readable, and still without Redis (port 1 refuses).
    const second = await cli(['--json', 'migrate'], { DATABASE_URL: url, REDIS_URL: 'redis://127.0.0.1:1' });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({ database: name, created: false, applied: [] });
  });
});

describe('tenants and operators', () => {
  let token: string;
  let operatorId: string;

  it('creates a tenant, and an operator whose token is printed once and stored only as its SHA-256', async () => {
    const tenant = await cli(['--json', 'tenants', 'create', '--id', 'acme', '--name', 'Acme Inc']);
    expect(tenant).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(tenant.stdout)).toEqual({ id: 'acme', name: 'Acme Inc' });
    expect(await t.db.selectFrom('tenants').select(['id', 'name']).execute()).toEqual([
      { id: 'acme', name: 'Acme Inc' },
    ]);

    const created = await cli([
      'operators',
      'create',
      '--tenant',
      'acme',
      '--name',
      'alice',
      '--role',
      'admin',
    ]);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const match = /^token: (\S+)$/m.exec(created.stdout);
    expect(match).not.toBeNull();
    token = match![1];
    expect(token).toMatch(/^kwop_[0-9A-Za-z]{43}$/);
    expect(created.stdout.split(token)).toHaveLength(2); // printed exactly once
    expect(created.stdout).toMatch(/shown only once/);
    operatorId = /created operator (op_\w+)/.exec(created.stdout)![1];

    const row = await t.db
      .selectFrom('operators')
      .selectAll()
      .where('id', '=', operatorId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ tenant_id: 'acme', name: 'alice', role: 'admin', status: 'active' });
    expect(row.token_hash).toBe(sha256Hex(token));
    expect(row.token_prefix).toBe(token.slice(0, 12));

    // The token is nowhere in the events (any column); the search does find what is stored.
    const hits = async (needle: string) =>
      (
        await sql<{
          n: number;
        }>`select count(*)::int as n from events e where strpos(e::text, ${needle}) > 0`.execute(t.db)
      ).rows[0].n;
    expect(await hits(token)).toBe(0);
    expect(await hits(token.slice(5))).toBe(0);
    expect(await hits(sha256Hex(token))).toBe(1);
    expect(await hits(operatorId)).toBe(1);

    // Who did it: the CLI as a system caller named after the person at the terminal.
    const event = await t.db
      .selectFrom('events')
      .select('metadata')
      .where('stream_id', '=', operatorId)
      .executeTakeFirstOrThrow();
    expect(event.metadata).toMatchObject({
      actor: { type: 'system', id: 'cli', name: `cli:${userInfo().username}` },
    });
  });

  it('refuses an operator for a tenant that does not exist: exit 1, one error line, no stack', async () => {
    const run = await cli([
      'operators',
      'create',
      '--tenant',
      'nowhere',
      '--name',
      'bob',
      '--role',
      'auditor',
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('error: no tenant nowhere\n');
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(await t.db.selectFrom('operators').select('name').where('name', '=', 'bob').execute()).toEqual([]);
  });

  it('lists operators without their token or its hash, and deletes one', async () => {
    const list = await cli(['operators', 'list', '--tenant', 'acme', '--json']);
    expect(list).toMatchObject({ code: 0, stderr: '' });
    const { items } = JSON.parse(list.stdout) as { items: Record<string, unknown>[] };
    expect(items).toEqual([
      {
        id: operatorId,
        tenantId: 'acme',
        name: 'alice',
        role: 'admin',
        tokenPrefix: token.slice(0, 12),
        createdAt: expect.any(String),
      },
    ]);
    expect(list.stdout).not.toContain(token);
    expect(list.stdout).not.toContain(sha256Hex(token));

    const deleted = await cli(['operators', 'delete', operatorId, '--reason', 'left the team']);
    expect(deleted).toMatchObject({ code: 0, stderr: '', stdout: `deleted operator ${operatorId}\n` });
    const row = await t.db
      .selectFrom('operators')
      .selectAll()
      .where('id', '=', operatorId)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('deleted');
    expect(row.deleted_at).toBeInstanceOf(Date);
    const event = await t.db
      .selectFrom('events')
      .select(['type', 'metadata'])
      .where('stream_id', '=', operatorId)
      .where('type', '=', 'OperatorDeleted')
      .executeTakeFirstOrThrow();
    expect(event.metadata).toMatchObject({ reason: 'left the team' });
  });
});

describe('projections rebuild, usage', () => {
  it('refuses an unknown projection as a usage error naming the known ones', async () => {
    const run = await cli(['projections', 'rebuild', 'no-such-projection']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`^error: .*'no-such-projection'.*${inlineProjections.map((p) => p.name).join(', ')}`, 'm'),
    );
    expect(run.stderr).not.toMatch(STACK_LINE);
  });
});

describe('projections rebuild', () => {
  const meta = (): EventMetadata => ({
    actor: { type: 'system', id: 'test', name: 'cli test' },
    reason: null,
    correlationId: randomUUID(),
  });

  function account(id: string, name: string): ServiceAccountCreatedV1 {
    return {
      id,
      tenantId: 'acme',
      name,
      environment: 'production',
      description: `the ${name} account`,
      intendedScope: null,
      businessOwner: 'finance@acme.example',
      technicalOwner: 'platform@acme.example',
      allowedScopes: ['tickets:read'],
      boundaries: ['site:plant-7'],
      allowedCidrs: ['10.20.0.0/16'],
      abuseDetection: true,
      rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: false },
      secretDelivery: null,
    };
  }

  async function snapshot() {
    return {
      tenants: await t.db.selectFrom('tenants').selectAll().orderBy('id').execute(),
      operators: await t.db.selectFrom('operators').selectAll().orderBy('id').execute(),
      serviceAccounts: await t.db.selectFrom('service_accounts').selectAll().orderBy('id').execute(),
    };
  }

  /** Row versions: a row the rebuild wrote again has a new xmin. */
  async function xmins(table: 'tenants' | 'operators' | 'service_accounts'): Promise<string[]> {
    const rows = await sql<{
      xmin: string;
    }>`select xmin::text as xmin from ${sql.table(table)} order by id`.execute(t.db);
    return rows.rows.map((r) => r.xmin);
  }

  beforeAll(async () => {
    // A second tenant and operator beside the CLI's, and service-account streams of several events.
    const store = new EventStore(t.db, inlineProjections, systemClock);
    await store.append(
      [
        {
          tenantId: 'globex',
          streamId: 'tenant-globex',
          streamType: 'tenant',
          expectedVersion: 0,
          events: [{ type: 'TenantCreated', data: { id: 'globex', name: 'Globex' } }],
        },
      ],
      meta(),
    );
    const opId = newId(ID_PREFIX.operator);
    await store.append(
      [
        {
          tenantId: 'globex',
          streamId: opId,
          streamType: 'operator',
          expectedVersion: 0,
          events: [
            {
              type: 'OperatorCreated',
              data: {
                id: opId,
                tenantId: 'globex',
                name: 'gina',
                role: 'auditor',
                tokenHash: sha256Hex(opId),
                tokenPrefix: 'kwop_test000',
              },
            },
          ],
        },
      ],
      meta(),
    );
    const streams: NewEvent[][] = [
      [
        { type: 'ServiceAccountCreated', data: account('', 'billing-sync') },
        { type: 'ScopesGranted', data: { scopes: ['invoices:write', 'invoices:read'] } },
      ],
      [
        { type: 'ServiceAccountCreated', data: account('', 'crm-export') },
        {
          type: 'ServiceAccountUpdated',
          data: { changes: { description: 'nightly CRM export', boundaries: [] } },
        },
        { type: 'ServiceAccountDisabled', data: {} },
      ],
      [
        { type: 'ServiceAccountCreated', data: account('', 'ticket-bot') },
        { type: 'ScopeRevoked', data: { scope: 'tickets:read' } },
        { type: 'ServiceAccountDeleted', data: {} },
      ],
    ];
    for (const events of streams) {
      const id = newId(ID_PREFIX.serviceAccount);
      (events[0].data as ServiceAccountCreatedV1).id = id;
      // One event per append, so the rows are folded across transactions as in real use.
      for (const [version, event] of events.entries()) {
        await store.append(
          [
            {
              tenantId: 'acme',
              streamId: id,
              streamType: SERVICE_ACCOUNT_STREAM,
              expectedVersion: version,
              events: [event],
            },
          ],
          meta(),
        );
      }
    }
  });

  it('rebuilds every projection from the events into the same rows', async () => {
    const before = await snapshot();
    expect(before.tenants.map((r) => r.id)).toEqual(['acme', 'globex']);
    expect(before.operators).toHaveLength(2);
    expect(before.serviceAccounts.map((r) => [r.name, r.status, r.version])).toEqual(
      expect.arrayContaining([
        ['billing-sync', 'active', 2],
        ['crm-export', 'disabled', 3],
        ['ticket-bot', 'deleted', 3],
      ]),
    );
    const xminsBefore = await xmins('service_accounts');
    const total = Number(
      (
        await t.db
          .selectFrom('events')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

    const run = await cli(['--json', 'projections', 'rebuild']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      projections: inlineProjections.map((p) => ({
        projection: p.name,
        tenantId: null,
        events: total,
        ms: expect.any(Number),
      })),
    });
    expect(run.stderr).toMatch(/rebuilding tenants/);
    expect(run.stderr).toMatch(new RegExp(`service-accounts: ${total} events replayed`));

    expect(await snapshot()).toEqual(before);
    // Written again, not left alone: every row carries a new row version.
    const xminsAfter = await xmins('service_accounts');
    xminsAfter.forEach((x, i) => expect(x).not.toBe(xminsBefore[i]));
  });

  it('repairs a corrupted read-model row, rebuilding only the projection named', async () => {
    const before = await snapshot();
    await t.db
      .updateTable('service_accounts')
      .set({ name: 'corrupted' })
      .where('name', '=', 'billing-sync')
      .execute();
    await t.db
      .updateTable('service_accounts')
      .set({ allowed_scopes: ['*:*'] })
      .where('name', '=', 'ticket-bot')
      .execute();
    await t.db.deleteFrom('service_accounts').where('name', '=', 'crm-export').execute();
    expect(await snapshot()).not.toEqual(before);
    await t.db.updateTable('tenants').set({ name: 'left alone' }).where('id', '=', 'globex').execute();

    const run = await cli(['projections', 'rebuild', 'service-accounts']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^PROJECTION\s+EVENTS\s+MS\n-+\s+-+\s+-+\nservice-accounts\s+\d+\s+\d+\n$/);

    const after = await snapshot();
    expect(after.serviceAccounts).toEqual(before.serviceAccounts);
    expect(after.tenants.find((r) => r.id === 'globex')!.name).toBe('left alone');
  });

  it("with --tenant rebuilds that tenant's rows from its own events and leaves the others' as they were", async () => {
    await t.db.updateTable('tenants').set({ name: 'damaged' }).where('id', '=', 'globex').execute();
    await t.db.updateTable('operators').set({ name: 'damaged' }).where('tenant_id', '=', 'globex').execute();
    await t.db.updateTable('tenants').set({ name: 'not globex' }).where('id', '=', 'acme').execute();
    const acme = async () =>
      (
        await sql<{ row: string }>`
          select concat_ws(' ', ctid, xmin, t) as row from tenants t where id <> 'globex'
          union all
          select concat_ws(' ', ctid, xmin, o) as row from operators o where tenant_id <> 'globex'
          order by row`.execute(t.db)
      ).rows.map((r) => r.row);
    const acmeBefore = await acme();
    const globexEvents = Number(
      (
        await t.db
          .selectFrom('events')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('tenant_id', '=', 'globex')
          .executeTakeFirstOrThrow()
      ).n,
    );

    const run = await cli(['--json', 'projections', 'rebuild', 'tenants', '--tenant', 'globex']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      projections: [
        { projection: 'tenants', tenantId: 'globex', events: globexEvents, ms: expect.any(Number) },
      ],
    });
    expect(run.stderr).toMatch(/rebuilding tenants of tenant globex/);
    // Globex's rows as its two events say, whatever an earlier test or the damage left.
    const after = await snapshot();
    expect(after.tenants.find((r) => r.id === 'globex')!.name).toBe('Globex');
    expect(after.operators.filter((r) => r.tenant_id === 'globex').map((r) => r.name)).toEqual(['gina']);
    // The other tenant's rows are the very tuples they were, damage included.
    expect(await acme()).toEqual(acmeBefore);
    expect(after.tenants.find((r) => r.id === 'acme')!.name).toBe('not globex');
  });

  it('projections status shows rows, checkpoint, lag and the last rebuild, as a table or JSON', async () => {
    const rebuilt = await cli(['projections', 'rebuild', 'keys']);
    expect(rebuilt.code).toBe(0);
    const human = await cli(['projections', 'status']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^PROJECTION\s+KIND\s+ROWS\s+CHECKPOINT\s+LAG\s+LAST REBUILD\n/);
    expect(human.stdout).toMatch(/\nkeys\s+inline\s+\d+\s+\d+\s+0\s+\S+ \(through \d+\)/);
    const json = await cli(['--json', 'projections', 'status']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { projections: { name: string; lag: number }[] };
    expect(parsed.projections.map((p) => p.name)).toEqual(inlineProjections.map((p) => p.name));
    expect(parsed.projections.every((p) => p.lag === 0)).toBe(true);
  });
});
