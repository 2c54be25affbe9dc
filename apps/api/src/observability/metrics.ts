import { Controller, Get, Global, Header, Inject, Module, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Public } from '../auth/access.decorator';

/** One registry per app instance (tests start several in one process), shared by every metric of Keyward. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'keyward_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'keyward_http_request_duration_seconds',
    help: 'HTTP request latency, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly verifications = new Counter({
    name: 'keyward_verify_total',
    help: 'Verifications answered (POST /v1/verify and the gateway check), by outcome: VALID or the refusal code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly verifyLatency = new Histogram({
    name: 'keyward_verify_duration_seconds',
    help: 'Time to decide a verification, from its parsed request to its answer',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'keyward_auth_failures_total',
    help:
      'Credentials sent and refused (answered 401, or 429 when throttled), by where their source ip was counted: ' +
      'shared (Redis, every instance) or local (this instance alone, Redis unreachable)',
    labelNames: ['counter'] as const,
    registers: [this.registry],
  });
  readonly authThrottled = new Counter({
    name: 'keyward_auth_throttled_total',
    help: 'Failed authentications answered 429 because their source ip was over its limit of failures',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'keyward_' });
  }

  /** One verification's outcome and how long it took since `startedAt` (`performance.now()`). */
  verified(code: string, startedAt: number): void {
    this.verifications.inc({ code });
    this.verifyLatency.observe((performance.now() - startedAt) / 1000);
  }

  /** One failed authentication, and whether its source was over its limit (429). */
  authenticationFailed(counter: 'shared' | 'local', throttled: boolean): void {
    this.authFailures.inc({ counter });
    if (throttled) this.authThrottled.inc();
  }

  /**
   * Times every request. The route label is the matched pattern (`/v1/service-accounts/:id`),
   * never the raw URL, so ids cannot explode the label set. Counted on the raw response's
   * `finish`, so streamed answers, which bypass Fastify's reply, are counted too.
   */
  register(fastify: FastifyInstance): void {
    fastify.addHook('onRequest', (request, reply: FastifyReply, done) => {
      const end = this.latency.startTimer();
      reply.raw.once('finish', () => {
        const labels = {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status: String(reply.raw.statusCode),
        };
        this.requests.inc(labels);
        end(labels);
      });
      done();
    });
  }
}

@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(@Inject(Metrics) private readonly metrics: Metrics) {}

  @Get()
  @Public()
  @Header('Cache-Control', 'no-store')
  async scrape(@Res({ passthrough: true }) res: FastifyReply): Promise<string> {
    void res.header('Content-Type', this.metrics.registry.contentType);
    return this.metrics.registry.metrics();
  }
}

/** Global, so the hot routes' controllers count into the one registry /metrics serves. */
@Global()
@Module({ providers: [Metrics], exports: [Metrics], controllers: [MetricsController] })
export class MetricsModule {}
