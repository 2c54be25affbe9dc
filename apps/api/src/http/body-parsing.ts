import { PassThrough, type Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isStorableText, ValidationFailed } from '@keyward/core';
import { HttpProblem, problem } from './problem';

/** API.md: a body over 64 KiB answers 413 (counted after any content encoding is undone). */
export const MAX_BODY_BYTES = 64 * 1024;

const JSON_TYPES = ['application/json', /^application\/[a-z0-9!#$&^_.-]+\+json$/i] as const;

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** Its message is the field's name: the parser reports which field held the text. */
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

function unsupported(detail: string): HttpProblem {
  return new HttpProblem(problem(415, 'UNSUPPORTED_MEDIA_TYPE', detail));
}

/**
 * A body that is not what it says it is gets a 4xx, never a 500: zlib's own errors (a gzip header
 * on plain JSON, a truncated stream) become 400, so the client learns its encoding is broken.
 */
function decoded(request: FastifyRequest, payload: Readable): Readable {
  const encoding = request.headers['content-encoding']?.trim().toLowerCase();
  if (!encoding || encoding === 'identity') return payload;
  const make = DECODERS[encoding];
  if (!make)
    throw unsupported(`the content encoding ${encoding} is not accepted; send gzip, deflate, br or none`);
  const decoder = make();
  // Fastify compares the bytes received with Content-Length, and those are the encoded ones.
  const out = new PassThrough() as PassThrough & { receivedEncodedLength: number };
  out.receivedEncodedLength = 0;
  payload.on('data', (chunk: Buffer) => (out.receivedEncodedLength += chunk.length));
  decoder.on('error', () =>
    out.destroy(
      new ValidationFailed(`the body is not valid ${encoding}`, [
        { field: '(body)', message: `must be ${encoding}-encoded as Content-Encoding says` },
      ]),
    ),
  );
  payload.pipe(decoder).pipe(out);
  return out;
}

function parseJson(text: string): unknown {
  // A request that says JSON but sends nothing validates as an empty object.
  if (text.length === 0) return {};
  try {
    return JSON.parse(text, refuseUnstorableText);
  } catch (error) {
    if (error instanceof UnstorableText) {
      throw new ValidationFailed('the body holds text with a NUL character or an unpaired surrogate', [
        {
          field: error.message || '(body)',
          message: 'must be text without NUL characters or unpaired surrogates',
        },
      ]);
    }
    if (error instanceof ReservedFieldName) {
      throw new ValidationFailed(`the body has a field named ${error.message}`, [
        { field: error.message, message: `${error.message} is not a known field` },
      ]);
    }
    throw new ValidationFailed('the body is not valid JSON');
  }
}

/**
 * Bodies are UTF-8 JSON (`application/json` or `+json`), at most 64 KiB once decoded; anything else
 * is refused with problem JSON before a route sees it. A request without a body gets `{}`, so
 * required fields say they are missing instead of the whole body being refused.
 */
export function registerBodyParsing(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  // Anything else has no parser: Fastify refuses it with 415, which the problem filter words.
  for (const type of JSON_TYPES) {
    fastify.addContentTypeParser(type, { parseAs: 'string' }, (request, body, done) => {
      const charset = /;\s*charset=("?)([^";]+)\1/i.exec(request.headers['content-type'] ?? '')?.[2];
      if (charset && !/^utf-?8$/i.test(charset)) {
        done(unsupported('the body must be UTF-8 JSON'), undefined);
        return;
      }
      try {
        done(null, parseJson(body as string));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
  }
  // Callback hooks, not async ones: every request passes them, and a promise each is measurable.
  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    try {
      done(null, decoded(request, payload));
    } catch (error) {
      done(error as Error);
    }
  });
  fastify.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined) request.body = {};
    done();
  });
}
