import { All, Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { RouteSchema } from '@nestjs/platform-fastify';
import { ApiBody, ApiExcludeEndpoint, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { tenantOf, type CommandContext } from '@keyward/auth';
import { RateLimited, Unauthenticated, ValidationFailed } from '@keyward/core';
import {
  gatewayOutcome,
  isIpAddress,
  Verifier,
  type GatewayQuestion,
  type VerifyAnswer,
  type VerifyRequest,
} from '@keyward/keys';
import { Access, Public, type AccessRule } from '../auth/access.decorator';
import { allows } from '../auth/auth.guard';
import { Authenticator } from '../auth/authenticator';
import { problem } from '../http/problem';
import { Ctx } from '../http/request-context';
import { Metrics } from '../observability/metrics';
import { SOURCE_IP_MESSAGE, VERIFY_BODY } from './verify.schema';

const VERIFIER_HEADER = 'x-keyward-verifier';
/** What POST /v1/verify's route asks of its caller, asked here of the gateway's credential. */
const VERIFY_RULE: AccessRule = { permission: 'verify' };

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * What the gateway asks: the caller's key from X-Api-Key or else Authorization, what to check
 * from the query string or else a header, the source ip from X-Forwarded-For (its first entry)
 * or X-Real-IP. On the appended-path form (`/v1/gateway/check/<original path>`, as Envoy sends
 * it) the query string is the original request's, so the caller's own: it is not read, or a
 * caller could name the scope it is checked for.
 */
function questionOf(request: FastifyRequest, appendedPath: boolean): GatewayQuestion {
  const query = appendedPath ? {} : (request.query as Record<string, string | string[] | undefined>);
  const pick = (param: string, name: string): string | undefined => {
    const value = query[param];
    const fromQuery = Array.isArray(value) ? value[0] : value;
    return fromQuery ?? header(request, name);
  };
  const bearer = /^Bearer (.+)$/.exec(header(request, 'authorization') ?? '')?.[1];
  const forwarded = header(request, 'x-forwarded-for')?.split(',')[0]?.trim();
  return {
    key: header(request, 'x-api-key') ?? bearer ?? '',
    scope: pick('scope', 'x-keyward-scope'),
    resource: pick('resource', 'x-keyward-resource'),
    environment: pick('environment', 'x-keyward-environment'),
    system: pick('system', 'x-keyward-system'),
    sourceIp: forwarded || header(request, 'x-real-ip') || undefined,
  };
}

/**
 * The hot path: API.md "Verify" and "Gateway check", one decision (the Verifier) answered as a
 * body or as status codes. Neither logs per request (see observability/logging.ts); each outcome
 * is counted on /metrics (`keyward_verify_total`, `keyward_verify_duration_seconds`).
 *
 * The gateway check serves nginx `auth_request`, Traefik ForwardAuth and Envoy `ext_authz`. It is
 * public to the auth guard because the gateway's own credential comes in X-Keyward-Verifier
 * (Authorization may carry the caller's key); it is authenticated here with the same
 * Authenticator and operator cache.
 */
@ApiTags('verify')
@Controller('v1')
export class VerifyController {
  constructor(
    @Inject(Authenticator) private readonly authenticator: Authenticator,
    @Inject(Verifier) private readonly verifier: Verifier,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  @Post('verify')
  @HttpCode(200)
  @Access(VERIFY_RULE)
  @RouteSchema({ body: VERIFY_BODY })
  @ApiBody({ schema: VERIFY_BODY as object })
  async verify(@Ctx() ctx: CommandContext, @Body() body: VerifyRequest): Promise<VerifyAnswer> {
    const startedAt = performance.now();
    const ip = body.source?.ip;
    if (ip !== undefined && !isIpAddress(ip)) {
      throw new ValidationFailed('the request is not valid', [
        { field: 'source.ip', message: SOURCE_IP_MESSAGE },
      ]);
    }
    const { answer } = await this.verifier.verify(tenantOf(ctx.caller), body);
    this.metrics.verified(answer.valid ? 'VALID' : answer.code, startedAt);
    return answer;
  }

  @All('gateway/check')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Gateway check: the verify decision as status codes (any method)' })
  async check(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.answer(request, reply, false);
  }

  @All('gateway/check/*')
  @Public()
  @ApiExcludeEndpoint()
  async checkPath(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.answer(request, reply, true);
  }

  private async answer(request: FastifyRequest, reply: FastifyReply, appendedPath: boolean): Promise<void> {
    const startedAt = performance.now();
    let tenantId: string;
    try {
      const { caller } = await this.authenticator.authenticate(header(request, VERIFIER_HEADER), request.ip);
      if (!allows(caller, VERIFY_RULE)) {
        return deny(reply, 403, 'VERIFIER_FORBIDDEN', 'the gateway credential may not verify keys');
      }
      tenantId = tenantOf(caller);
    } catch (error) {
      if (error instanceof Unauthenticated) {
        return deny(
          reply,
          401,
          'VERIFIER_UNAUTHENTICATED',
          'send X-Keyward-Verifier: Bearer <verifier credential>',
        );
      }
      if (error instanceof RateLimited) {
        void reply.header('Retry-After', String(error.retryAfterSeconds));
        return deny(reply, 429, 'RATE_LIMITED', error.message);
      }
      throw error;
    }
    const question = questionOf(request, appendedPath);
    const { answer, retryAt, at } = await this.verifier.verify(tenantId, {
      key: question.key,
      scope: question.scope,
      resource: question.resource,
      environment: question.environment,
      source: { ip: question.sourceIp, system: question.system },
    });
    this.metrics.verified(answer.valid ? 'VALID' : answer.code, startedAt);
    const outcome = gatewayOutcome(answer, retryAt, at);
    if (outcome.status === 200) {
      void reply.status(200).headers(outcome.headers).send();
      return;
    }
    void reply.headers(outcome.headers);
    deny(reply, outcome.status, outcome.code, outcome.detail);
  }
}

function deny(reply: FastifyReply, status: number, code: string, detail: string): void {
  const title = status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : 'RATE_LIMITED';
  void reply
    .status(status)
    .header('X-Keyward-Code', code)
    .type('application/problem+json')
    .send(JSON.stringify({ ...problem(status, title, detail), code }));
}
