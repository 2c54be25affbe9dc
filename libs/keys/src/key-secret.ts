import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { randomBase62 } from '@keyward/core';

/**
 * A key as its holder sees it: `kw_<env>_<id><secret><check>` (API.md "Keys").
 * - env: `live`, `stage` or `dev`;
 * - id: the key id's 20 base62 characters (the key is found by it, without a scan);
 * - secret: 33 base62 characters from the CSPRNG, 196 bits;
 * - check: CRC32 of everything before it, as 6 base62 characters, so a mangled key is refused
 *   without a lookup.
 * Only the SHA-256 of the whole key is ever stored.
 */
export const KEY_ENVIRONMENT = { production: 'live', staging: 'stage', development: 'dev' } as const;
export type KeyEnvironmentTag = (typeof KEY_ENVIRONMENT)[keyof typeof KEY_ENVIRONMENT];

const ID_LENGTH = 20;
const SECRET_LENGTH = 33;
const CHECK_LENGTH = 6;
const KEY_FORM = /^kw_(live|stage|dev)_([0-9A-Za-z]{20})([0-9A-Za-z]{33})([0-9A-Za-z]{6})$/;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export interface IssuedKeySecret {
  /** Shown once to the caller, never stored or logged. */
  secret: string;
  /** `kw_<env>_<id>`: searchable and safe to log. */
  prefix: string;
  /** SHA-256 hex of the whole key: what is stored. */
  hash: string;
}

export interface ParsedKey {
  environmentTag: KeyEnvironmentTag;
  /** The key id's random part; the key id is `key_` + this. */
  idPart: string;
  prefix: string;
}

export function checkOf(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECK_LENGTH; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** Makes the key for a key id (`key_` + 20 base62 characters) in an environment. */
export function issueKeySecret(keyId: string, environment: keyof typeof KEY_ENVIRONMENT): IssuedKeySecret {
  const idPart = keyId.slice(keyId.indexOf('_') + 1);
  if (idPart.length !== ID_LENGTH) throw new Error(`not a key id: ${keyId}`);
  const prefix = `kw_${KEY_ENVIRONMENT[environment]}_${idPart}`;
  const body = `${prefix}${randomBase62(SECRET_LENGTH)}`;
  const secret = `${body}${checkOf(body)}`;
  return { secret, prefix, hash: keyHash(secret) };
}

/** The key's form and checksum, without any I/O; null when either is wrong. */
export function parseKey(candidate: string): ParsedKey | null {
  const match = KEY_FORM.exec(candidate);
  if (!match) return null;
  const body = candidate.slice(0, candidate.length - CHECK_LENGTH);
  if (checkOf(body) !== match[4]) return null;
  return {
    environmentTag: match[1] as KeyEnvironmentTag,
    idPart: match[2],
    prefix: `kw_${match[1]}_${match[2]}`,
  };
}

export function keyHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A string that looks like the start of a key: a prefix search never needs more. */
export const KEY_PREFIX_SEARCH = /^kw_(live|stage|dev)_[0-9A-Za-z]{1,20}$/;
