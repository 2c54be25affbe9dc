import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

/** Settings read once at start-up from the environment. */
export interface KeywardConfig {
  nodeEnv: string;
  production: boolean;
  databaseUrl: string;
  redisUrl: string;
  port: number;
  /** The address the API listens on: loopback unless production or the deployment says otherwise. */
  host: string;
  /** Absent only outside production, until `ensureBootstrapToken` makes one. */
  bootstrapToken: string | undefined;
  logLevel: string;
  /** Prefix for every Redis key and channel, so several deployments (or test files) can share a server. */
  redisPrefix: string;
  /** How long a verify instance trusts a cached key without hearing of a change; 0 turns the cache off. */
  keyCacheTtlMs: number;
  /** Cron pattern (seconds field allowed) of the worker's move of usage counts to PostgreSQL. */
  usageFlushCron: string;
  /** Cron pattern of the set-based sweeps: expiry, rotation and unused keys. */
  sweepCron: string;
  /** Cron pattern of the abuse-signal evaluation over flushed usage. */
  abuseCron: string;
  /** Webhooks may target loopback, private and link-local addresses (tests, local development). */
  webhookAllowPrivate: boolean;
  /** First retry delay of a failed webhook delivery; each later retry waits twice as long. */
  webhookRetryDelayMs: number;
  /** Failed authentications one source ip may make in a window before the rest answer 429. */
  authFailureLimit: number;
  /** The window over which failed authentications are counted. */
  authFailureWindowMs: number;
  /** Secret from which the key that encrypts webhook signing secrets at rest is derived. */
  encryptionKey: string;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads and checks the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): KeywardConfig {
  const nodeEnv = env.NODE_ENV ?? 'development';
  const production = nodeEnv === 'production';

  const databaseUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/keyward';
  checkUrl('DATABASE_URL', databaseUrl, ['postgres:', 'postgresql:']);
  const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  checkUrl('REDIS_URL', redisUrl, ['redis:', 'rediss:']);

  const portText = env.PORT ?? '3000';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new ConfigError('PORT', `must be a whole number from 0 to 65535, got "${portText}"`);
  }

  // A development server prints its bootstrap token: it must not be reachable from the network
  // unless someone asked for that. The Docker image sets 0.0.0.0.
  const host = env.KEYWARD_HOST || (production ? '0.0.0.0' : '127.0.0.1');
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]{1,253}$/.test(host)) {
    throw new ConfigError('KEYWARD_HOST', `must be an IP address or a host name, got "${host}"`);
  }

  const bootstrapToken = env.KEYWARD_BOOTSTRAP_TOKEN || undefined;
  if (bootstrapToken !== undefined && bootstrapToken.length < 32) {
    throw new ConfigError('KEYWARD_BOOTSTRAP_TOKEN', 'must be at least 32 characters long');
  }
  if (production && bootstrapToken === undefined) {
    throw new ConfigError('KEYWARD_BOOTSTRAP_TOKEN', 'is required when NODE_ENV=production');
  }

  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const redisPrefix = env.KEYWARD_REDIS_PREFIX ?? 'kw';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(redisPrefix)) {
    throw new ConfigError('KEYWARD_REDIS_PREFIX', 'must be 1 to 64 of [A-Za-z0-9_-] (BullMQ forbids ":")');
  }

  const keyCacheTtlMs = wholeNumber(env, 'KEYWARD_KEY_CACHE_TTL_MS', 2_000, [0, 60_000]);
  const usageFlushCron = cronPattern(env, 'KEYWARD_USAGE_FLUSH_CRON', '*/5 * * * * *');
  const sweepCron = cronPattern(env, 'KEYWARD_SWEEP_CRON', '* * * * *');
  const abuseCron = cronPattern(env, 'KEYWARD_ABUSE_CRON', '* * * * *');

  const webhookAllowPrivate = flag(env, 'KEYWARD_WEBHOOK_ALLOW_PRIVATE', false);
  const webhookRetryDelayMs = wholeNumber(env, 'KEYWARD_WEBHOOK_RETRY_DELAY_MS', 10_000, [1, 3_600_000]);

  // 100 per 5 minutes: far above what an honest source fails (a client with a stale token retries
  // a few times a minute; a NAT of many such clients still fails well under 20 a minute), and far
  // below a guessing campaign, which is cut off after 100 tries and then told to wait minutes.
  const authFailureLimit = wholeNumber(env, 'KEYWARD_AUTH_FAILURE_LIMIT', 100, [1, 1_000_000]);
  const authFailureWindowMs = wholeNumber(
    env,
    'KEYWARD_AUTH_FAILURE_WINDOW_MS',
    300_000,
    [1_000, 86_400_000],
  );

  const encryptionKey = env.KEYWARD_ENCRYPTION_KEY || undefined;
  if (encryptionKey !== undefined && encryptionKey.length < 32) {
    throw new ConfigError('KEYWARD_ENCRYPTION_KEY', 'must be at least 32 characters long');
  }
  if (production && encryptionKey === undefined) {
    throw new ConfigError('KEYWARD_ENCRYPTION_KEY', 'is required when NODE_ENV=production');
  }

  return {
    nodeEnv,
    production,
    databaseUrl,
    redisUrl,
    port,
    host,
    bootstrapToken,
    logLevel,
    redisPrefix,
    keyCacheTtlMs,
    usageFlushCron,
    sweepCron,
    abuseCron,
    webhookAllowPrivate,
    webhookRetryDelayMs,
    authFailureLimit,
    authFailureWindowMs,
    // A fixed value outside production, not one derived from the bootstrap token: that token is
    // made afresh at each start when unset (ensureBootstrapToken), and secrets encrypted under a
    // key derived from it would be unreadable after a restart. This value is public, so nothing
    // encrypted under it is protected; production must set its own (checked above).
    encryptionKey: encryptionKey ?? DEVELOPMENT_ENCRYPTION_KEY,
  };
}

/** Outside production only: see loadConfig. Public by design, so it protects nothing. */
export const DEVELOPMENT_ENCRYPTION_KEY = 'keyward-development-only-encryption-key';

/**
 * Outside production a missing bootstrap token is made here, like a dev server's root token.
 * Returns the token that was made (for the caller to print once), or undefined.
 */
export function ensureBootstrapToken(config: KeywardConfig): string | undefined {
  if (config.bootstrapToken !== undefined) return undefined;
  if (config.production)
    throw new ConfigError('KEYWARD_BOOTSTRAP_TOKEN', 'is required when NODE_ENV=production');
  config.bootstrapToken = `kwb_${randomBytes(32).toString('base64url')}`;
  return config.bootstrapToken;
}

function wholeNumber(
  env: NodeJS.ProcessEnv,
  variable: string,
  fallback: number,
  [min, max]: [number, number],
): number {
  const text = env[variable];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(variable, `must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/** `true` or `false` (also `1`/`0`); a typo such as `ture` stops start-up instead of meaning false. */
function flag(env: NodeJS.ProcessEnv, variable: string, fallback: boolean): boolean {
  const text = env[variable];
  if (text === undefined || text === '') return fallback;
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new ConfigError(variable, `must be true or false, got "${text}"`);
}

/**
 * A cron pattern of 5 fields, or 6 with seconds first, as BullMQ's job schedulers take them. The
 * form is checked here so a typo stops start-up naming the variable; BullMQ parses the values.
 */
function cronPattern(env: NodeJS.ProcessEnv, variable: string, fallback: string): string {
  const text = env[variable];
  if (text === undefined || text === '') return fallback;
  const fields = text.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6 || !fields.every((f) => /^[0-9A-Za-z*/,?#LW-]+$/.test(f))) {
    throw new ConfigError(variable, `must be a cron pattern of 5 fields (6 with seconds), got "${text}"`);
  }
  return fields.join(' ');
}

function checkUrl(variable: string, value: string, protocols: string[]): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(variable, 'is not a valid URL');
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(variable, `must use ${protocols.join(' or ')}, got "${url.protocol}"`);
  }
}

/** Injection token for the KeywardConfig in Nest modules. */
export const CONFIG = Symbol('CONFIG');
