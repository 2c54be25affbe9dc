import { once } from 'node:events';
import { get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sql } from 'kysely';
import { Client } from 'pg';
import { EventStore, type NewEvent } from '@keyward/event-store';
import {
  bearer,
  createTenant,
  newServerErrors,
  startTestApi,
  type TestApi,
} from '../../../../test/support/api';
import { ADMIN_DATABASE_URL } from '../../../../test/support/env';

/**
 * API.md "History and replay": `Accept: application/x-ndjson` streams the lot. 50,000 events of one
 * tenant go out over real HTTP from a database cursor, at the pace the client reads them, while the
 * process's memory stays flat.
 */

const EVENTS = 50_000;
const PER_APPEND = 1_000;

// Forced collections make the samples what is live, not what the collector has not got to yet.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Live heap plus memory outside it (Buffers, socket queues), after two full collections. */
function liveMemory(): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

const MB = 1024 * 1024;
const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;

let api: TestApi;
let server: Server;
let auditor: string;
beforeAll(async () => {
  api = await startTestApi();
  const t = await createTenant(api, 'export');
  auditor = await t.token('auditor');
  // The chain stays valid: every batch goes through the store's own append.
  const store = new EventStore(api.database.db, [], api.clock);
  for (let batch = 0; batch < EVENTS / PER_APPEND; batch++) {
    const events: NewEvent[] = Array.from({ length: PER_APPEND }, (_, i) => ({
      type: i % 10 === 0 ? 'LoadMarked' : 'LoadRecorded',
      data: {
        n: batch * PER_APPEND + i,
        note: 'an event of the export test',
        tags: ['export', `batch-${batch}`],
      },
    }));
    await store.append(
      [{ tenantId: 'export', streamId: `load-${batch}`, streamType: 'load', expectedVersion: 0, events }],
      {
        actor: { type: 'system', id: 'export-test', name: 'export test' },
        reason: null,
        correlationId: `load-${batch}`,
      },
    );
  }
  // Sessions of other test files share the cluster's transaction ids and can hold the feed's
  // horizon back for a moment: wait until every event is visible to it.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await sql<{ behind: boolean }>`
      select exists (select 1 from events where tenant_id = 'export'
        and transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) as behind`.execute(api.database.db);
    if (!rows[0].behind) break;
    if (Date.now() > deadline) throw new Error('the feed never caught up');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  server = api.app.getHttpServer() as Server;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
}, 60_000);
afterAll(async () => {
  // A test that failed halfway may leave an export waiting on its client: do not wait for it.
  server?.closeAllConnections();
  server?.close();
  await api?.close();
});
afterEach(() => expect(newServerErrors(api)).toEqual([]));

/** GET /v1/events as NDJSON over a real connection, so the test reads the body at its own pace. */
function requestExport(): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const { port } = server.address() as AddressInfo;
    get(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/events',
        agent: false,
        headers: { ...bearer(auditor), Accept: 'application/x-ndjson' },
      },
      resolve,
    ).on('error', reject);
  });
}

/**
 * Reads until at least `bytes` arrived (or the body ended) and pauses: the rest stays unread and
 * the connection open, so the server is left waiting on this client.
 */
function readSome(res: IncomingMessage, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let read = 0;
    const settle = (then: () => void) => {
      res.off('data', onData).off('end', onEnd).off('error', onError);
      then();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read < bytes) return;
      res.pause();
      settle(() => resolve(read));
    };
    const onEnd = () => settle(() => resolve(read));
    const onError = (error: Error) => settle(() => reject(error));
    res.on('data', onData).on('end', onEnd).on('error', onError);
    res.resume();
  });
}

it(`exports ${EVENTS.toLocaleString('en')} events as NDJSON in commit order, in flat memory`, async () => {
  const stored = await api.database.db
    .selectFrom('events')
    .select('position')
    .where('tenant_id', '=', 'export')
    .orderBy('transaction_id')
    .orderBy('position')
    .execute();
  const expected = stored.map((r) => Number(r.position));
  expect(expected.length).toBeGreaterThan(EVENTS);

  const baseline = liveMemory();
  const samples: { lines: number; memory: number }[] = [];
  let peak = 0;
  let lines = 0;
  let bytes = 0;
  let loadEvents = 0;
  let outOfOrder = 0;
  const started = Date.now();

  const res = await requestExport();
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
  res.setEncoding('utf8');
  let rest = '';
  for await (const chunk of res as AsyncIterable<string>) {
    bytes += Buffer.byteLength(chunk);
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    for (const line of parts) {
      const event = JSON.parse(line) as { position: number; type: string; data: { n?: number } };
      if (event.position !== expected[lines]) outOfOrder += 1;
      if (event.type.startsWith('Load')) loadEvents += 1;
      lines += 1;
      if (lines % 1_000 === 0)
        peak = Math.max(peak, process.memoryUsage().heapUsed + process.memoryUsage().external);
      if (lines % 10_000 === 0) {
        // Stop reading for a moment: a server that ignored backpressure would now queue the rest
        // of the export in memory, and the sample would show it.
        await new Promise((resolve) => setTimeout(resolve, lines === 10_000 ? 2_000 : 100));
        samples.push({ lines, memory: liveMemory() });
      }
    }
  }
  const seconds = (Date.now() - started) / 1000;
  expect(rest).toBe('');
  expect(lines).toBe(expected.length);
  expect(loadEvents).toBe(EVENTS);
  expect(outOfOrder).toBe(0);

  const growth = samples.map((s) => s.memory - baseline);
  const report = {
    events: lines,
    exportMB: mb(bytes),
    seconds,
    baselineMB: mb(baseline),
    liveGrowthMBAt: Object.fromEntries(samples.map((s, i) => [s.lines, mb(growth[i])])),
    peakGrowthMBWithoutGc: mb(peak - baseline),
  };
  process.stdout.write(`NDJSON export memory: ${JSON.stringify(report)}\n`);

  expect(samples.map((s) => s.lines)).toEqual([10_000, 20_000, 30_000, 40_000, 50_000]);
  // Loaded at once, the export would hold every row (well over its own size in objects) or its
  // whole text; streamed, what is live stays a small, fixed fraction of it...
  expect(bytes).toBeGreaterThan(10 * MB);
  for (const g of growth) expect(g).toBeLessThan(bytes / 8);
  // ...and does not grow with the count: 40,000 more lines add next to nothing.
  expect(growth[4] - growth[0]).toBeLessThan(2 * MB);
}, 30_000);

it('checks the 50,000-event chain as intact, a batch at a time', async () => {
  const res = await api.http.get('/v1/audit/integrity').set(bearer(auditor)).expect(200);
  // The tenant's own three events (tenant, admin, auditor) and the load.
  expect(res.body).toEqual({ ok: true, checked: EVENTS + 3, brokenAt: null });
}, 30_000);

it('a database lost mid-export cuts the transfer short instead of ending a short export cleanly', async () => {
  const res = await requestExport();
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  const name = api.database.name;
  try {
    expect(res.statusCode).toBe(200);
    await readSome(res, 64 * 1024);
    // The export waits on this client. The database now refuses the API: its sessions end and
    // new ones are turned away, so the export's next batch cannot be read.
    await admin.query(`alter database "${name}" allow_connections false`);
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'keyward-api'`,
      [name],
    );
    // The body breaks off: the client can tell it has not got the whole export.
    await expect(readSome(res, Number.MAX_SAFE_INTEGER)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(res.complete).toBe(false);
  } finally {
    res.destroy();
    await admin.query(`alter database "${name}" allow_connections true`);
    await admin.end();
  }
  // With the database back, the API answers again: at once, or after a pooled connection that had
  // not yet heard of its termination fails one request with a clean 503 and is discarded.
  const deadline = Date.now() + 5_000;
  let status = 0;
  while (status !== 200 && Date.now() < deadline) {
    status = (await api.http.get('/v1/events?limit=1').set(bearer(auditor))).status;
    expect([200, 503]).toContain(status);
  }
  expect(status).toBe(200);
  expect(newServerErrors(api).filter((line) => !line.endsWith(' 503'))).toEqual([]);
}, 30_000);
