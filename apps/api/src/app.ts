import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule, type ApiOptions } from './app.module';
import { bodyParserErrors, parseJsonBody, requireJsonBody } from './http/body-parsing';
import { assignRequestIds } from './http/request-context';
import { validationPipe } from './http/validation';
import { Metrics } from './observability/metrics';
import { setupOpenApi } from './observability/openapi';

/**
 * The HTTP app, configured but not listening: main.ts listens, e2e tests hand it to supertest.
 * Order matters: ids first (every log line and event carries them), then metrics, then the body
 * checks, so a 413 or 415 is logged and counted like any other answer.
 */
export async function createApi(options: ApiOptions): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(options), {
    bodyParser: false,
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  // ETag means a resource's version here (API.md "Versions"); Express's body-hash ETags would blur that.
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  app.use(assignRequestIds);
  app.use(app.get(Metrics).middleware());
  app.use(requireJsonBody, parseJsonBody, bodyParserErrors);
  app.use((req: { body?: unknown }, _res: unknown, next: () => void) => {
    // A request without a body validates as an empty object: required fields then say they are missing.
    if (req.body === undefined) req.body = {};
    next();
  });
  app.useGlobalPipes(validationPipe());
  setupOpenApi(app);
  await app.init();
  return app;
}
