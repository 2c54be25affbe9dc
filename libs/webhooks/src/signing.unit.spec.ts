import { createHmac } from 'node:crypto';
import { newSigningSecret, signatureHeader, verifySignature } from './signing';

const SECRET = 'whsec_test-secret';
const BODY = '{"id":"whd_1","type":"key.revoked"}';
const T = 1_772_355_600;

describe('signatureHeader', () => {
  it('is t=<unix>,v1=<hex HMAC-SHA256 of "t.body">, as API.md states', () => {
    const expected = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(signatureHeader(SECRET, BODY, T)).toBe(`t=${T},v1=${expected}`);
  });
});

describe('verifySignature', () => {
  const header = signatureHeader(SECRET, BODY, T);

  it('accepts its own signature within the tolerance, either side of the receiver clock', () => {
    expect(verifySignature(SECRET, BODY, header, { now: T })).toBe(true);
    expect(verifySignature(SECRET, BODY, header, { now: T + 300 })).toBe(true);
    expect(verifySignature(SECRET, BODY, header, { now: T - 300 })).toBe(true);
  });

  it('refuses a signature older or newer than the tolerance (a replay)', () => {
    expect(verifySignature(SECRET, BODY, header, { now: T + 301 })).toBe(false);
    expect(verifySignature(SECRET, BODY, header, { now: T - 61, toleranceSeconds: 60 })).toBe(false);
  });

  it('refuses another body, another secret, or a moved timestamp', () => {
    expect(verifySignature(SECRET, `${BODY} `, header, { now: T })).toBe(false);
    expect(verifySignature('whsec_other', BODY, header, { now: T })).toBe(false);
    const moved = header.replace(`t=${T}`, `t=${T + 1}`);
    expect(verifySignature(SECRET, BODY, moved, { now: T })).toBe(false);
  });

  it.each([
    undefined,
    '',
    'garbage',
    `t=${T}`,
    `v1=${'0'.repeat(64)}`,
    `t=${T},t=${T},v1=${'0'.repeat(64)}`,
    `t=${T},v1=zz`,
  ])('refuses the malformed header %j', (bad) => {
    expect(verifySignature(SECRET, BODY, bad, { now: T })).toBe(false);
  });

  it('accepts when any of several v1 values matches (a secret being rolled)', () => {
    const [, v1] = header.split(',');
    expect(verifySignature(SECRET, BODY, `t=${T},v1=${'a'.repeat(64)},${v1}`, { now: T })).toBe(true);
  });
});

describe('newSigningSecret', () => {
  it('makes a prefixed 256-bit secret, different each time', () => {
    const a = newSigningSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(newSigningSecret()).not.toBe(a);
  });
});
