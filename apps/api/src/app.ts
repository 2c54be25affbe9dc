import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { AppModule, type ApiOptions } from './app.module';
import { MAX_BODY_BYTES, registerBodyParsing } from './http/body-parsing';
import { assignRequestIds, registerRequestContext } from './http/request-context';
import { validationPipe } from './http/validation';
import { Metrics } from './observability/metrics';
import { createRequestLogger, registerRequestLog } from './observability/logging';
import { setupOpenApi } from './observability/openapi';

/**
 * The HTTP app on Fastify, configured but not listening: main.ts listens, e2e tests hand it to
 * supertest. Fastify, not Express, because verify is held to a fraction of a bare Fastify server.
 * Order matters: ids first (every log line and event carries them), then metrics, then the body
 * checks, so a 413 or 415 is logged and counted like any other answer.
 */
export async function createApi(options: ApiOptions): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    genReqId: assignRequestIds,
    trustProxy: 'loopback',
    bodyLimit: MAX_BODY_BYTES,
    // Route schemas (verify's body) check what they say and nothing else: no field is dropped or
    // converted behind the caller's back, as the DTOs' whitelist refuses unknown fields.
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: false,
        allErrors: true,
        // OpenAPI's `example` rides along in the schemas the document shows.
        keywords: ['example'],
      },
    },
  });
  const requestLogger = createRequestLogger(options.config.logLevel, options.logStream);
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(options, requestLogger),
    adapter,
    {
      bodyParser: false,
      bufferLogs: true,
    },
  );
  app.useLogger(app.get(Logger));
  const fastify = app.getHttpAdapter().getInstance();
  registerRequestContext(fastify);
  registerRequestLog(fastify, requestLogger);
  app.get(Metrics).register(fastify);
  registerBodyParsing(fastify);
  app.useGlobalPipes(validationPipe());
  setupOpenApi(app);
  await app.init();
  await fastify.ready();
  return app;
}
