import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { isStorableText } from '@keyward/core';
import { problem, sendProblem } from './problem';

/** API.md: a body over 64 KiB answers 413. */
export const MAX_BODY_BYTES = 64 * 1024;

function hasBody(req: express.Request): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** A request that carries a body must say it is JSON (`application/json` or `+json`): else 415. */
export const requireJsonBody: RequestHandler = (req, res, next) => {
  if (hasBody(req) && !req.is(['application/json', 'application/*+json'])) {
    sendProblem(
      res,
      problem(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `request bodies must be application/json, not ${req.headers['content-type'] ?? 'untyped'}`,
      ),
    );
    return;
  }
  next();
};

/** Its message is the field's name: body-parser strips every other property off a parse error. */
class UnstorableText extends Error {}

/** A field named like a member of every object (`constructor`, `__proto__`, `toString`...). */
class ReservedFieldName extends Error {}

/** Refuses, anywhere in any body, text PostgreSQL could not store; so no route can forget to. */
function refuseUnstorableText(key: string, value: unknown): unknown {
  if (!isStorableText(key) || (typeof value === 'string' && !isStorableText(value)))
    throw new UnstorableText(key);
  // No field of ours has such a name, and class-validator's whitelist does not see them as unknown.
  if (key in Object.prototype || key === 'prototype') throw new ReservedFieldName(key);
  return value;
}

export const parseJsonBody = express.json({
  limit: MAX_BODY_BYTES,
  type: ['application/json', 'application/*+json'],
  strict: true,
  reviver: refuseUnstorableText,
});

/** body-parser's own errors (too large, not JSON, bad charset) as problem JSON instead of HTML. */
export const bodyParserErrors: ErrorRequestHandler = (error, _req, res, next) => {
  const e = error as { type?: string; status?: number };
  switch (e.type) {
    case 'entity.too.large':
      return sendProblem(res, problem(413, 'PAYLOAD_TOO_LARGE', `the body is over ${MAX_BODY_BYTES} bytes`));
    case 'entity.parse.failed':
      if (error instanceof UnstorableText) {
        return sendProblem(
          res,
          problem(
            400,
            'VALIDATION_FAILED',
            'the body holds text with a NUL character or an unpaired surrogate',
            {
              errors: [
                {
                  field: error.message || '(body)',
                  message: 'must be text without NUL characters or unpaired surrogates',
                },
              ],
            },
          ),
        );
      }
      if (error instanceof ReservedFieldName) {
        return sendProblem(
          res,
          problem(400, 'VALIDATION_FAILED', `the body has a field named ${error.message}`, {
            errors: [{ field: error.message, message: `${error.message} is not a known field` }],
          }),
        );
      }
      return sendProblem(res, problem(400, 'VALIDATION_FAILED', 'the body is not valid JSON'));
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return sendProblem(res, problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'the body must be UTF-8 JSON'));
    case 'request.aborted':
    case 'request.size.invalid':
      return sendProblem(res, problem(400, 'VALIDATION_FAILED', 'the body was cut short'));
    default:
      return next(error);
  }
};
