import { randomBytes } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `length` base62 characters from the CSPRNG, without modulo bias. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 62 * 4 = 248: bytes at or above it would favour the first characters.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export const ID_PREFIX = {
  serviceAccount: 'sa_',
  operator: 'op_',
  key: 'key_',
  approval: 'apr_',
} as const;

/** Opaque ids: a kind prefix and 20 base62 characters (~119 bits). */
export function newId(prefix: string): string {
  return `${prefix}${randomBase62(20)}`;
}

/** The form of every id this service makes: a kind prefix and 20 base62 characters. */
export const OPAQUE_ID = /^[a-z]{2,4}_[0-9A-Za-z]{20}$/;

/** Ids are checked for form before they reach SQL; a malformed id can only be "not found". */
export function isId(value: string, prefix: string): boolean {
  return value.startsWith(prefix) && OPAQUE_ID.test(value);
}
