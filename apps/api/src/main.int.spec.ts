import { spawn } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Socket } from 'node:net';
import { createTestDatabase, testRedisPrefix, type TestDatabase } from '../../../test/support/database';
import { TEST_REDIS_URL } from '../../../test/support/env';

/**
 * The API as `npm start` runs it (apps/api/src/main.ts): a development server prints a bootstrap
 * token, so by default it must listen on loopback only, not on every address of the machine.
 */
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

function startMain(env: Record<string, string>): Promise<{ url: string; stop: () => void }> {
  const root = path.resolve(__dirname, '../../..');
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', 'apps/api/src/main.ts'],
    {
      cwd: root,
      env: {
        ...process.env,
        NODE_ENV: 'development',
        DATABASE_URL: database.url,
        REDIS_URL: TEST_REDIS_URL,
        KEYWARD_REDIS_PREFIX: testRedisPrefix(),
        PORT: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the API did not say where it listens')), 25_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const url = /listening on (http:\/\/[^\s"]+)/.exec(line)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve({ url, stop: () => child.kill('SIGTERM') });
      }
    });
    child.once('exit', (code) => reject(new Error(`the API exited with ${code}`)));
  });
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(1_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.connect(port, host);
  });
}

/** An address of this machine that is not loopback, if it has one. */
function externalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((entry) => entry && entry.family === 'IPv4' && !entry.internal)?.address;
}

it('listens on 127.0.0.1 by default outside production, and says where', async () => {
  const api = await startMain({});
  try {
    const { hostname, port } = new URL(api.url);
    expect(hostname).toBe('127.0.0.1');
    expect(await connects('127.0.0.1', Number(port))).toBe(true);
    const external = externalAddress();
    if (external) expect(await connects(external, Number(port))).toBe(false);
  } finally {
    api.stop();
  }
}, 40_000);

it('listens where KEYWARD_HOST says', async () => {
  const api = await startMain({ KEYWARD_HOST: '0.0.0.0' });
  try {
    const { hostname, port } = new URL(api.url);
    expect(hostname).toBe('0.0.0.0');
    const external = externalAddress();
    expect(await connects(external ?? '127.0.0.1', Number(port))).toBe(true);
  } finally {
    api.stop();
  }
}, 40_000);
