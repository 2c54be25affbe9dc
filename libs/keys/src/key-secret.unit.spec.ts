import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ID_PREFIX, newId } from '@keyward/core';
import { checkOf, issueKeySecret, KEY_ENVIRONMENT, keyHash, parseKey } from './key-secret';

// API.md "Keys": kw_<env>_<id><secret><check>, env live|stage|dev, prefix kw_<env>_<id>, at least
// 192 random bits, check a CRC32 of the rest, only a SHA-256 stored.

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ENVIRONMENTS = ['production', 'staging', 'development'] as const;
const TAGS = { production: 'live', staging: 'stage', development: 'dev' } as const;
const ID_CHARS = 20;
const SECRET_CHARS = 33;
const CHECK_CHARS = 6;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const idPartOf = (keyId: string): string => keyId.slice(ID_PREFIX.key.length);
/** A base62 character other than `c`, chosen deterministically. */
const otherBase62 = (c: string, shift = 1): string => BASE62[(BASE62.indexOf(c) + shift) % 62];

function issued(environment: (typeof ENVIRONMENTS)[number] = 'production') {
  const keyId = newId(ID_PREFIX.key);
  return { keyId, ...issueKeySecret(keyId, environment) };
}

describe('issueKeySecret', () => {
  it.each(ENVIRONMENTS)('%s: kw_<tag>_ + 20 id + 33 secret + 6 check base62 characters', (environment) => {
    const tag = TAGS[environment];
    const { keyId, secret } = issued(environment);
    expect(secret).toMatch(new RegExp(`^kw_${tag}_[0-9A-Za-z]{${ID_CHARS + SECRET_CHARS + CHECK_CHARS}}$`));
    expect(secret).toHaveLength(`kw_${tag}_`.length + ID_CHARS + SECRET_CHARS + CHECK_CHARS);
    expect(secret.slice(`kw_${tag}_`.length, `kw_${tag}_`.length + ID_CHARS)).toBe(idPartOf(keyId));
  });

  it('maps each environment to its tag and no other', () => {
    expect(KEY_ENVIRONMENT).toEqual({ production: 'live', staging: 'stage', development: 'dev' });
  });

  it.each(ENVIRONMENTS)('%s: prefix is kw_<tag>_<id part> and starts the secret', (environment) => {
    const { keyId, secret, prefix } = issued(environment);
    expect(prefix).toBe(`kw_${TAGS[environment]}_${idPartOf(keyId)}`);
    expect(secret.startsWith(prefix)).toBe(true);
    expect(secret.length - prefix.length).toBe(SECRET_CHARS + CHECK_CHARS);
  });

  it('the id part equals the key id without its key_ prefix', () => {
    const keyId = 'key_AbCdEfGhIjKlMnOpQrSt';
    const { secret, prefix } = issueKeySecret(keyId, 'staging');
    expect(prefix).toBe('kw_stage_AbCdEfGhIjKlMnOpQrSt');
    expect(parseKey(secret)?.idPart).toBe('AbCdEfGhIjKlMnOpQrSt');
  });

  it('refuses an id whose random part is not 20 characters', () => {
    expect(() => issueKeySecret('key_short', 'production')).toThrow(/not a key id/);
    expect(() => issueKeySecret('key_AbCdEfGhIjKlMnOpQrStU', 'production')).toThrow(/not a key id/);
  });

  it('hash is the SHA-256 hex of the whole secret, and keyHash agrees', () => {
    const { secret, hash } = issued();
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).toBe(sha256(secret));
    expect(keyHash(secret)).toBe(hash);
    expect(hash).not.toContain(secret);
  });

  it('the check is CRC32 of everything before it, in 6 base62 digits (most significant first)', () => {
    const { secret } = issued();
    const body = secret.slice(0, -CHECK_CHARS);
    let n = crc32(body);
    let expected = '';
    for (let i = 0; i < CHECK_CHARS; i++) {
      expected = BASE62[n % 62] + expected;
      n = Math.floor(n / 62);
    }
    expect(secret.slice(-CHECK_CHARS)).toBe(expected);
    expect(checkOf(body)).toBe(expected);
    // 6 base62 digits hold every CRC32 value, so no two CRCs share a check.
    expect(62 ** CHECK_CHARS).toBeGreaterThan(2 ** 32);
    expect(checkOf('')).toBe('000000');
  });

  it('secrets differ across many draws, even for the same key id', () => {
    const keyId = newId(ID_PREFIX.key);
    const draws = Array.from({ length: 2000 }, () => issueKeySecret(keyId, 'production'));
    expect(new Set(draws.map((d) => d.secret)).size).toBe(draws.length);
    expect(new Set(draws.map((d) => d.hash)).size).toBe(draws.length);
    const secretParts = draws.map((d) => d.secret.slice(d.prefix.length, d.prefix.length + SECRET_CHARS));
    expect(new Set(secretParts).size).toBe(draws.length);
    // Every base62 character shows up somewhere in the random parts (66,000 draws of 62 symbols).
    expect(new Set(secretParts.join('')).size).toBe(62);
  });

  it('the secret part carries at least 192 random bits: 33 base62 characters are about 196 bits', () => {
    const bits = SECRET_CHARS * Math.log2(62);
    expect(bits).toBeGreaterThanOrEqual(192);
    expect(Math.floor(bits)).toBe(196);
    // 33 is the fewest base62 characters that reach 192 bits: 32 would fall short.
    expect(32 * Math.log2(62)).toBeLessThan(192);
    expect(Math.ceil(192 / Math.log2(62))).toBe(SECRET_CHARS);
    // And the issued key really has 33 characters between prefix and check.
    const { secret, prefix } = issued();
    expect(secret.slice(prefix.length, -CHECK_CHARS)).toMatch(/^[0-9A-Za-z]{33}$/);
  });
});

describe('parseKey', () => {
  it.each(ENVIRONMENTS)('accepts an issued %s key and answers its tag, id part and prefix', (environment) => {
    const { keyId, secret, prefix } = issued(environment);
    expect(parseKey(secret)).toEqual({ environmentTag: TAGS[environment], idPart: idPartOf(keyId), prefix });
  });

  it('accepts many issued keys', () => {
    for (let i = 0; i < 300; i++) {
      const { secret } = issued(ENVIRONMENTS[i % 3]);
      expect(parseKey(secret)).not.toBeNull();
    }
  });

  it.each(ENVIRONMENTS)('%s: refuses every single-character change at every position', (environment) => {
    const { secret } = issued(environment);
    let tried = 0;
    for (let position = 0; position < secret.length; position++) {
      for (const shift of [1, 31, 61]) {
        const c = secret[position];
        // Positions in kw_<tag>_ are not base62 throughout; any other base62 character will do there.
        const replacement = BASE62.includes(c) ? otherBase62(c, shift) : BASE62[shift];
        expect(replacement).not.toBe(c);
        const mangled = secret.slice(0, position) + replacement + secret.slice(position + 1);
        expect(mangled).toHaveLength(secret.length);
        if (parseKey(mangled) !== null) throw new Error(`accepted a change at ${position}: ${mangled}`);
        tried++;
      }
    }
    expect(tried).toBe(secret.length * 3);
  });

  it('refuses a change in the random part even with a well-formed check of the wrong body', () => {
    const a = issued();
    const b = issued();
    // a's body with b's check: form is fine, checksum is not.
    const spliced = a.secret.slice(0, -CHECK_CHARS) + b.secret.slice(-CHECK_CHARS);
    expect(spliced).toMatch(/^kw_live_[0-9A-Za-z]{59}$/);
    expect(parseKey(spliced)).toBeNull();
  });

  it('refuses two characters swapped', () => {
    const { secret, prefix } = issued();
    for (let i = prefix.length; i < secret.length - 1; i++) {
      if (secret[i] === secret[i + 1]) continue;
      const swapped = secret.slice(0, i) + secret[i + 1] + secret[i] + secret.slice(i + 2);
      expect(parseKey(swapped)).toBeNull();
    }
  });

  it.each(ENVIRONMENTS)('%s: refuses the key truncated at every length', (environment) => {
    const { secret } = issued(environment);
    for (let length = 0; length < secret.length; length++) {
      expect(parseKey(secret.slice(0, length))).toBeNull();
    }
  });

  it('refuses extra characters before, inside or after the key', () => {
    const { secret, prefix } = issued();
    for (const extra of ['A', '0', 'z', '_', '-', '=']) {
      expect(parseKey(secret + extra)).toBeNull();
      expect(parseKey(extra + secret)).toBeNull();
      expect(parseKey(prefix + extra + secret.slice(prefix.length))).toBeNull();
    }
    expect(parseKey(secret + secret)).toBeNull();
  });

  it('refuses a secret part one character short or long, even with a check recomputed for it', () => {
    const { prefix, secret } = issued();
    const random = secret.slice(prefix.length, -CHECK_CHARS);
    for (const part of [random.slice(1), `${random}A`, random.slice(5), `${random}${random}`]) {
      const body = prefix + part;
      expect(parseKey(body + checkOf(body))).toBeNull();
    }
    // The id part too: 19 or 21 characters.
    const tail = secret.slice(prefix.length, -CHECK_CHARS);
    for (const id of [prefix.slice('kw_live_'.length + 1), `${prefix.slice('kw_live_'.length)}A`]) {
      const body = `kw_live_${id}${tail}`;
      expect(parseKey(body + checkOf(body))).toBeNull();
    }
  });

  it('refuses junk before or after the key even when the check is made to fit it', () => {
    const { secret } = issued();
    const body = secret.slice(0, -CHECK_CHARS);
    // Before: the check covers the junk, so only the anchored form can refuse it.
    for (const junk of ['x', ' ', 'token=']) {
      expect(parseKey(junk + body + checkOf(junk + body))).toBeNull();
    }
    // After: find a body and check c with checkOf(body + c[0]) === c, so that body + c + '!' passes
    // the checksum (which covers all but the last 6 characters); only the anchored form refuses it.
    let found = 0;
    for (let i = 0; i < 20_000 && found < 3; i++) {
      const candidate = issued().secret.slice(0, -CHECK_CHARS);
      const c0 = BASE62[i % 62];
      const check = checkOf(candidate + c0);
      if (check[0] !== c0) continue;
      const mangled = `${candidate}${check}!`;
      expect(checkOf(mangled.slice(0, -CHECK_CHARS))).toBe(check);
      expect(parseKey(mangled)).toBeNull();
      found++;
    }
    expect(found).toBe(3);
  });

  it('refuses a tag that is not live, stage or dev, even with a check recomputed for it', () => {
    const { secret } = issued();
    const rest = secret.slice('kw_live_'.length, -CHECK_CHARS);
    for (const tag of ['prod', 'production', 'staging', 'development', 'test', 'LIVE', 'Live', 'lives', '']) {
      const body = `kw_${tag}_${rest}`;
      expect(parseKey(body + checkOf(body))).toBeNull();
    }
  });

  it('refuses a key whose tag was swapped for another valid one (its check no longer holds)', () => {
    const { secret } = issued('production');
    expect(parseKey(secret.replace(/^kw_live_/, 'kw_dev_'))).toBeNull();
    expect(parseKey(secret.replace(/^kw_live_/, 'kw_stage_'))).toBeNull();
  });

  it('refuses KW_, Kw_ and kW_ and an uppercase tag', () => {
    const { secret } = issued();
    for (const start of ['KW_', 'Kw_', 'kW_']) {
      const body = start + secret.slice(3, -CHECK_CHARS);
      expect(parseKey(start + secret.slice(3))).toBeNull();
      expect(parseKey(body + checkOf(body))).toBeNull();
    }
    expect(parseKey(secret.toUpperCase())).toBeNull();
    expect(parseKey(secret.replace('kw_live_', 'kw_LIVE_'))).toBeNull();
  });

  it('refuses whitespace around or inside the key', () => {
    const { secret, prefix } = issued();
    for (const space of [' ', '\t', '\n', '\r\n', '\u00a0', '\u200b', '\ufeff']) {
      expect(parseKey(space + secret)).toBeNull();
      expect(parseKey(secret + space)).toBeNull();
      expect(parseKey(prefix + space + secret.slice(prefix.length))).toBeNull();
    }
  });

  it('refuses unicode lookalikes of the letters and the underscore', () => {
    const { secret, prefix } = issued();
    // Cyrillic а, е, о, Latin small capital K, fullwidth characters, Greek omicron.
    const lookalikes: Record<string, string[]> = {
      a: ['\u0430'],
      e: ['\u0435'],
      o: ['\u043e', '\u03bf'],
      k: ['\u1d0b', '\uff4b'],
      w: ['\uff57'],
      _: ['\uff3f', '\u2017'],
      '0': ['\uff10', '\u0660'],
      '1': ['\u0661', '\uff11'],
    };
    let refused = 0;
    for (let position = 0; position < secret.length; position++) {
      for (const lookalike of lookalikes[secret[position]] ?? []) {
        const mangled = secret.slice(0, position) + lookalike + secret.slice(position + 1);
        expect(parseKey(mangled)).toBeNull();
        refused++;
      }
    }
    // The prefix alone holds k, w and two underscores.
    expect(refused).toBeGreaterThanOrEqual(6);
    expect(parseKey(`k\u0461_${secret.slice(3)}`)).toBeNull();
    expect(parseKey(prefix.replace('kw', '\uff4b\uff57') + secret.slice(prefix.length))).toBeNull();
    const fullwidthTail = secret
      .slice(prefix.length)
      .replace(/[0-9A-Za-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
    expect(parseKey(prefix + fullwidthTail)).toBeNull();
  });

  it('refuses the empty string and things that are not keys', () => {
    expect(parseKey('')).toBeNull();
    expect(parseKey('kw_live_')).toBeNull();
    expect(parseKey('Bearer kw_live_')).toBeNull();
    expect(parseKey('x'.repeat(10_000))).toBeNull();
    const { secret } = issued();
    expect(parseKey(`Bearer ${secret}`)).toBeNull();
    expect(parseKey(keyHash(secret))).toBeNull();
  });
});
