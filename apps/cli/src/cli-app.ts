import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { Module, type DynamicModule, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import type { CommandContext } from '@keyward/auth';
import { loadConfig, type KeywardConfig } from '@keyward/config';
import { AccountsModule } from '@keyward/accounts';
import { PlatformModule } from '@keyward/platform';
import { TenantsModule } from '@keyward/tenants';

/** The modules the CLI's commands run through: the same command handlers the API uses. */
@Module({})
export class CliModule {
  static forRoot(config: KeywardConfig): DynamicModule {
    return {
      module: CliModule,
      imports: [
        CqrsModule.forRoot(),
        PlatformModule.forRoot({ config, applicationName: 'keyward-cli', dbPoolSize: 2 }),
        TenantsModule,
        AccountsModule,
      ],
    };
  }
}

/**
 * Runs `work` in a Nest application context and closes it afterwards (the platform module ends the
 * PostgreSQL pool and the Redis client), so the process can exit on its own.
 */
export async function withCliApp<T>(work: (app: INestApplicationContext) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const app = await NestFactory.createApplicationContext(CliModule.forRoot(config), {
    logger: ['error', 'warn'],
    // Throw start-up errors to our handler rather than abort the process.
    abortOnError: false,
  });
  try {
    return await work(app);
  } finally {
    await app.close();
  }
}

/** Who the CLI acts as: a system caller named after the person at the terminal, in `tenantId` if given. */
export function cliContext(tenantId: string | null): CommandContext {
  return {
    caller: { kind: 'system', id: 'cli', name: `cli:${terminalUser()}`, tenantId },
    correlationId: randomUUID(),
  };
}

function terminalUser(): string {
  try {
    return userInfo().username;
  } catch {
    // A container user without a passwd entry.
    return process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  }
}
