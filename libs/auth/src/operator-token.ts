import { createHash, timingSafeEqual } from 'node:crypto';
import { randomBase62 } from '@keyward/core';

/** Operator tokens: `kwop_` and 43 base62 characters (~256 bits). Only a SHA-256 is stored. */
export const OPERATOR_TOKEN_PREFIX = 'kwop_';
const OPERATOR_TOKEN = /^kwop_[0-9A-Za-z]{43}$/;

export interface IssuedOperatorToken {
  token: string;
  /** Safe to show and log: enough to tell tokens apart, far too little to guess one. */
  prefix: string;
  hash: string;
}

export function issueOperatorToken(): IssuedOperatorToken {
  const token = `${OPERATOR_TOKEN_PREFIX}${randomBase62(43)}`;
  return { token, prefix: token.slice(0, 12), hash: sha256Hex(token) };
}

export function isOperatorTokenForm(value: string): boolean {
  return OPERATOR_TOKEN.test(value);
}

export function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export function sha256Hex(value: string): string {
  return sha256(value).toString('hex');
}

/** Compares two secrets in time independent of where they differ (and of their lengths). */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}
