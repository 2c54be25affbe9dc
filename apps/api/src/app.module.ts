import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';
import type { HttpLogger } from 'pino-http';
import { AccountsModule } from '@keyward/accounts';
import { PlatformModule, type PlatformOptions } from '@keyward/platform';
import { TenantsModule } from '@keyward/tenants';
import { AdminModule } from './admin/admin.module';
import { AuditApiModule } from './audit/audit-api.module';
import { ReplayApiModule } from './replay/replay-api.module';
import { SignalsApiModule } from './signals/signals-api.module';
import { WebhooksApiModule } from './webhooks/webhooks-api.module';
import { KeysApiModule } from './keys/keys-api.module';
import { ServiceAccountsController } from './accounts/service-accounts.controller';
import { AuthGuard } from './auth/auth.guard';
import { ProblemFilter } from './http/problem.filter';
import { HealthController } from './observability/health.controller';
import { loggerParams } from './observability/logging';
import { MetricsModule } from './observability/metrics';
import { QueueMetrics } from './observability/queue-metrics';
import { UsageEvaluationMetrics } from './observability/usage-evaluation-metrics';
import { SchedulesHealth } from './observability/schedules.health';
import { TenantsController } from './tenants/tenants.controller';

export interface ApiOptions extends Omit<PlatformOptions, 'applicationName'> {
  /** Where JSON log lines go; stdout when absent. Tests pass a stream to search the logs. */
  logStream?: NodeJS.WritableStream;
}

@Module({})
export class AppModule {
  static forRoot(options: ApiOptions, requestLogger: HttpLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams(requestLogger)),
        PlatformModule.forRoot({ ...options, applicationName: 'keyward-api' }),
        CqrsModule.forRoot(),
        TerminusModule.forRoot({ logger: false }),
        TenantsModule,
        AccountsModule,
        AdminModule,
        KeysApiModule,
        AuditApiModule,
        ReplayApiModule,
        SignalsApiModule,
        WebhooksApiModule,
        MetricsModule,
      ],
      controllers: [HealthController, TenantsController, ServiceAccountsController],
      providers: [
        QueueMetrics,
        UsageEvaluationMetrics,
        SchedulesHealth,
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ProblemFilter },
      ],
    };
  }
}
