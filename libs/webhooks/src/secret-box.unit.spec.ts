import { SecretBox } from './secret-box';

const CONFIG_SECRET = 'k'.repeat(32);

describe('SecretBox', () => {
  const box = new SecretBox(CONFIG_SECRET);

  it('decrypts what it encrypted, and the ciphertext does not hold the secret', () => {
    const sealed = box.encrypt('whsec_plain', 'wh_1');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('whsec_plain');
    expect(box.decrypt(sealed, 'wh_1')).toBe('whsec_plain');
  });

  it('encrypts the same secret differently each time (a fresh IV)', () => {
    expect(box.encrypt('s', 'wh_1')).not.toBe(box.encrypt('s', 'wh_1'));
  });

  it('refuses a ciphertext bound to another webhook, altered, or under another key', () => {
    const sealed = box.encrypt('whsec_plain', 'wh_1');
    expect(() => box.decrypt(sealed, 'wh_2')).toThrow();
    const [v, iv, tag, data] = sealed.split('.');
    const flipped = Buffer.from(data!, 'base64url');
    flipped[0] ^= 1;
    expect(() => box.decrypt([v, iv, tag, flipped.toString('base64url')].join('.'), 'wh_1')).toThrow();
    expect(() => new SecretBox('o'.repeat(32)).decrypt(sealed, 'wh_1')).toThrow();
    expect(() => box.decrypt('not-sealed', 'wh_1')).toThrow('not a sealed secret');
  });
});
