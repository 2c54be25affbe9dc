import {
  ConfigError,
  DEVELOPMENT_ENCRYPTION_KEY,
  ensureBootstrapToken,
  loadConfig,
  type KeywardConfig,
} from './config';

const TOKEN = 't'.repeat(32);
const KEY = 'k'.repeat(32);

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('defaults every variable for local development', () => {
    expect(loadConfig({})).toEqual({
      nodeEnv: 'development',
      production: false,
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/keyward',
      redisUrl: 'redis://127.0.0.1:6379',
      port: 3000,
      host: '127.0.0.1',
      bootstrapToken: undefined,
      logLevel: 'info',
      redisPrefix: 'kw',
      keyCacheTtlMs: 2_000,
      usageFlushCron: '*/5 * * * * *',
      sweepCron: '* * * * *',
      abuseCron: '* * * * *',
      webhookAllowPrivate: false,
      webhookRetryDelayMs: 10_000,
      authFailureLimit: 100,
      authFailureWindowMs: 300_000,
      encryptionKey: DEVELOPMENT_ENCRYPTION_KEY,
    });
  });

  it('reads every variable it is given', () => {
    expect(
      loadConfig({
        NODE_ENV: 'production',
        DATABASE_URL: 'postgresql://kw:secret@db.internal:6543/keyward_prod',
        REDIS_URL: 'rediss://cache.internal:6380/2',
        PORT: '8080',
        KEYWARD_HOST: '10.1.2.3',
        KEYWARD_BOOTSTRAP_TOKEN: TOKEN,
        LOG_LEVEL: 'warn',
        KEYWARD_REDIS_PREFIX: 'kw-prod_1',
        KEYWARD_KEY_CACHE_TTL_MS: '0',
        KEYWARD_USAGE_FLUSH_CRON: '*/30 * * * * *',
        KEYWARD_SWEEP_CRON: '*/5  * * * *',
        KEYWARD_ABUSE_CRON: '*/10 * * * * *',
        KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true',
        KEYWARD_WEBHOOK_RETRY_DELAY_MS: '250',
        KEYWARD_AUTH_FAILURE_LIMIT: '20',
        KEYWARD_AUTH_FAILURE_WINDOW_MS: '60000',
        KEYWARD_ENCRYPTION_KEY: KEY,
      }),
    ).toEqual({
      nodeEnv: 'production',
      production: true,
      databaseUrl: 'postgresql://kw:secret@db.internal:6543/keyward_prod',
      redisUrl: 'rediss://cache.internal:6380/2',
      port: 8080,
      host: '10.1.2.3',
      bootstrapToken: TOKEN,
      logLevel: 'warn',
      redisPrefix: 'kw-prod_1',
      keyCacheTtlMs: 0,
      usageFlushCron: '*/30 * * * * *',
      sweepCron: '*/5 * * * *',
      abuseCron: '*/10 * * * * *',
      webhookAllowPrivate: true,
      webhookRetryDelayMs: 250,
      authFailureLimit: 20,
      authFailureWindowMs: 60_000,
      encryptionKey: KEY,
    });
  });

  it('listens on loopback outside production and on every address in production, unless KEYWARD_HOST says', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'test' }).host).toBe('127.0.0.1');
    const production = {
      NODE_ENV: 'production',
      KEYWARD_BOOTSTRAP_TOKEN: TOKEN,
      KEYWARD_ENCRYPTION_KEY: KEY,
    };
    expect(loadConfig(production).host).toBe('0.0.0.0');
    expect(loadConfig({ ...production, KEYWARD_HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
    expect(loadConfig({ KEYWARD_HOST: '::1' }).host).toBe('::1');
    expect(() => loadConfig({ KEYWARD_HOST: 'not a host!' })).toThrow(/KEYWARD_HOST/);
  });

  it.each(['0', '65535'])('accepts PORT %j', (port) => {
    expect(loadConfig({ PORT: port }).port).toBe(Number(port));
  });

  it.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])('accepts LOG_LEVEL %j', (level) => {
    expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level);
  });

  it('treats an empty bootstrap token as none', () => {
    expect(loadConfig({ KEYWARD_BOOTSTRAP_TOKEN: '' }).bootstrapToken).toBeUndefined();
  });

  it.each<[string, NodeJS.ProcessEnv]>([
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['DATABASE_URL', { DATABASE_URL: '' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://root@127.0.0.1:3306/keyward' }],
    ['DATABASE_URL', { DATABASE_URL: 'redis://127.0.0.1:6379' }],
    ['REDIS_URL', { REDIS_URL: '127.0.0.1:6379' }],
    ['REDIS_URL', { REDIS_URL: 'http://127.0.0.1:6379' }],
    ['REDIS_URL', { REDIS_URL: 'postgres://127.0.0.1:5432' }],
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '65536' }],
    ['PORT', { PORT: '-1' }],
    ['PORT', { PORT: '80.5' }],
    ['PORT', { PORT: '' }],
    ['KEYWARD_BOOTSTRAP_TOKEN', { KEYWARD_BOOTSTRAP_TOKEN: 't'.repeat(31) }],
    ['KEYWARD_BOOTSTRAP_TOKEN', { NODE_ENV: 'production' }],
    ['KEYWARD_BOOTSTRAP_TOKEN', { NODE_ENV: 'production', KEYWARD_BOOTSTRAP_TOKEN: '' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'INFO' }],
    ['KEYWARD_REDIS_PREFIX', { KEYWARD_REDIS_PREFIX: 'kw:prod' }],
    ['KEYWARD_REDIS_PREFIX', { KEYWARD_REDIS_PREFIX: '' }],
    ['KEYWARD_REDIS_PREFIX', { KEYWARD_REDIS_PREFIX: 'p'.repeat(65) }],
    ['KEYWARD_REDIS_PREFIX', { KEYWARD_REDIS_PREFIX: 'kw prod' }],
    ['KEYWARD_KEY_CACHE_TTL_MS', { KEYWARD_KEY_CACHE_TTL_MS: '60001' }],
    ['KEYWARD_KEY_CACHE_TTL_MS', { KEYWARD_KEY_CACHE_TTL_MS: '1.5' }],
    ['KEYWARD_KEY_CACHE_TTL_MS', { KEYWARD_KEY_CACHE_TTL_MS: '-1' }],
    ['KEYWARD_USAGE_FLUSH_CRON', { KEYWARD_USAGE_FLUSH_CRON: 'every 5s' }],
    ['KEYWARD_USAGE_FLUSH_CRON', { KEYWARD_USAGE_FLUSH_CRON: '* * * *' }],
    ['KEYWARD_SWEEP_CRON', { KEYWARD_SWEEP_CRON: '* * * * * * *' }],
    ['KEYWARD_SWEEP_CRON', { KEYWARD_SWEEP_CRON: '* * * * ; rm' }],
    ['KEYWARD_ABUSE_CRON', { KEYWARD_ABUSE_CRON: 'every minute' }],
    ['KEYWARD_WEBHOOK_ALLOW_PRIVATE', { KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'yes' }],
    ['KEYWARD_WEBHOOK_ALLOW_PRIVATE', { KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'TRUE' }],
    ['KEYWARD_WEBHOOK_RETRY_DELAY_MS', { KEYWARD_WEBHOOK_RETRY_DELAY_MS: '0' }],
    ['KEYWARD_WEBHOOK_RETRY_DELAY_MS', { KEYWARD_WEBHOOK_RETRY_DELAY_MS: '3600001' }],
    ['KEYWARD_AUTH_FAILURE_LIMIT', { KEYWARD_AUTH_FAILURE_LIMIT: '0' }],
    ['KEYWARD_AUTH_FAILURE_LIMIT', { KEYWARD_AUTH_FAILURE_LIMIT: '1000001' }],
    ['KEYWARD_AUTH_FAILURE_LIMIT', { KEYWARD_AUTH_FAILURE_LIMIT: 'many' }],
    ['KEYWARD_AUTH_FAILURE_WINDOW_MS', { KEYWARD_AUTH_FAILURE_WINDOW_MS: '999' }],
    ['KEYWARD_AUTH_FAILURE_WINDOW_MS', { KEYWARD_AUTH_FAILURE_WINDOW_MS: '86400001' }],
    ['KEYWARD_AUTH_FAILURE_WINDOW_MS', { KEYWARD_AUTH_FAILURE_WINDOW_MS: '5m' }],
    ['KEYWARD_ENCRYPTION_KEY', { KEYWARD_ENCRYPTION_KEY: 'k'.repeat(31) }],
    ['KEYWARD_ENCRYPTION_KEY', { NODE_ENV: 'production', KEYWARD_BOOTSTRAP_TOKEN: TOKEN }],
    [
      'KEYWARD_ENCRYPTION_KEY',
      { NODE_ENV: 'production', KEYWARD_BOOTSTRAP_TOKEN: TOKEN, KEYWARD_ENCRYPTION_KEY: '' },
    ],
  ])('throws ConfigError naming %s for %j', (variable, env) => {
    const error = configError(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(new RegExp(`^Invalid configuration: ${variable} `));
  });

  it('requires the bootstrap token in production, and says so', () => {
    expect(configError({ NODE_ENV: 'production' }).message).toContain('required when NODE_ENV=production');
    expect(
      loadConfig({ NODE_ENV: 'production', KEYWARD_BOOTSTRAP_TOKEN: TOKEN, KEYWARD_ENCRYPTION_KEY: KEY })
        .production,
    ).toBe(true);
  });

  it.each(['true', '1'])('allows private webhook addresses with %j', (value) => {
    expect(loadConfig({ KEYWARD_WEBHOOK_ALLOW_PRIVATE: value }).webhookAllowPrivate).toBe(true);
  });

  it.each(['false', '0', ''])('refuses private webhook addresses with %j', (value) => {
    expect(loadConfig({ KEYWARD_WEBHOOK_ALLOW_PRIVATE: value }).webhookAllowPrivate).toBe(false);
  });

  it('requires the encryption key in production, and does not echo a short one', () => {
    const error = configError({ NODE_ENV: 'production', KEYWARD_BOOTSTRAP_TOKEN: TOKEN });
    expect(error.message).toContain('required when NODE_ENV=production');
    const short = 'short-encryption-secret';
    expect(configError({ KEYWARD_ENCRYPTION_KEY: short }).message).not.toContain(short);
  });

  it('uses the fixed development key only outside production, the same at every start', () => {
    expect(loadConfig({}).encryptionKey).toBe(loadConfig({ KEYWARD_BOOTSTRAP_TOKEN: TOKEN }).encryptionKey);
    expect(loadConfig({ KEYWARD_ENCRYPTION_KEY: KEY }).encryptionKey).toBe(KEY);
  });

  it('does not echo the bootstrap token in its error', () => {
    const short = 'secret-but-short';
    expect(configError({ KEYWARD_BOOTSTRAP_TOKEN: short }).message).not.toContain(short);
  });
});

describe('ensureBootstrapToken', () => {
  it('makes a token outside production, once, and sets it on the config', () => {
    const config = loadConfig({});
    const token = ensureBootstrapToken(config);
    expect(typeof token).toBe('string');
    expect((token as string).length).toBeGreaterThanOrEqual(32);
    expect(config.bootstrapToken).toBe(token);
    // The made token passes loadConfig's own rule.
    expect(loadConfig({ KEYWARD_BOOTSTRAP_TOKEN: token }).bootstrapToken).toBe(token);

    expect(ensureBootstrapToken(config)).toBeUndefined();
    expect(config.bootstrapToken).toBe(token);
  });

  it('makes a different token each time', () => {
    expect(ensureBootstrapToken(loadConfig({}))).not.toBe(ensureBootstrapToken(loadConfig({})));
  });

  it('keeps a token that was configured', () => {
    const config = loadConfig({ KEYWARD_BOOTSTRAP_TOKEN: TOKEN });
    expect(ensureBootstrapToken(config)).toBeUndefined();
    expect(config.bootstrapToken).toBe(TOKEN);
  });

  it('throws in production instead of making one', () => {
    const config: KeywardConfig = { ...loadConfig({}), nodeEnv: 'production', production: true };
    let error: unknown;
    try {
      ensureBootstrapToken(config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('KEYWARD_BOOTSTRAP_TOKEN');
    expect(config.bootstrapToken).toBeUndefined();
  });
});
