import { createHash } from 'node:crypto';
import { actorOf, callerAllows, type Caller } from './caller';
import {
  OPERATOR_TOKEN_PREFIX,
  isOperatorTokenForm,
  issueOperatorToken,
  secretsEqual,
  sha256Hex,
} from './operator-token';
import { ROLES, ROLE_SCOPES, scopesAllow, type Permission, type Role } from './roles';

const PERMISSIONS: Permission[] = ['manage', 'read', 'audit', 'approve', 'verify'];

/** API.md "Callers and credentials": what each role may do. */
const ALLOWED: Record<Role | 'bootstrap', Permission[]> = {
  admin: ['manage', 'read', 'audit', 'approve', 'verify'],
  approver: ['read', 'approve'],
  auditor: ['read', 'audit'],
  verifier: ['verify'],
  bootstrap: [],
};

const operator = (role: Role): Caller => ({
  kind: 'operator',
  id: 'op_1',
  tenantId: 'acme',
  name: 'Ada',
  role,
});

describe('roles', () => {
  it('are admin, approver, auditor and verifier, each equal to its governance scopes', () => {
    expect([...ROLES]).toEqual(['admin', 'approver', 'auditor', 'verifier']);
    expect(ROLE_SCOPES).toEqual({
      admin: ['keyward:admin'],
      approver: ['keyward:approve', 'keyward:read'],
      auditor: ['keyward:read', 'keyward:audit'],
      verifier: ['keyward:verify'],
    });
  });

  const matrix = ROLES.flatMap((role) =>
    PERMISSIONS.map((permission) => [role, permission, ALLOWED[role].includes(permission)] as const),
  );

  it.each(matrix)('%s may %s: %s', (role, permission, allowed) => {
    expect(scopesAllow(ROLE_SCOPES[role], permission)).toBe(allowed);
    expect(callerAllows(operator(role), permission)).toBe(allowed);
  });

  it.each(PERMISSIONS)('the bootstrap token may not %s tenant data', (permission) => {
    expect(callerAllows({ kind: 'bootstrap' }, permission)).toBe(ALLOWED.bootstrap.includes(permission));
    expect(callerAllows({ kind: 'bootstrap' }, permission)).toBe(false);
  });

  it.each(PERMISSIONS)('a system caller may %s', (permission) => {
    expect(
      callerAllows({ kind: 'system', id: 'cli', name: 'keyward cli', tenantId: 'acme' }, permission),
    ).toBe(true);
  });

  describe('scopesAllow over a key’s own scopes', () => {
    it.each<[string[], Permission[]]>([
      [[], []],
      [['keyward:admin'], PERMISSIONS],
      [['keyward:read'], ['read']],
      [['keyward:audit'], ['audit']],
      [['keyward:approve'], ['approve']],
      [['keyward:verify'], ['verify']],
      [
        ['keyward:read', 'keyward:verify'],
        ['read', 'verify'],
      ],
      // product:* covers every action of the product (API.md scope syntax), keyward's own included.
      [['keyward:*'], ['manage', 'read', 'audit', 'approve', 'verify']],
      [['tickets:read', 'keyward:Read', 'keyward:admin '], []],
    ])('%j allows exactly %j', (scopes, allowed) => {
      expect(PERMISSIONS.filter((p) => scopesAllow(scopes, p))).toEqual(allowed);
    });
  });
});

describe('actorOf', () => {
  it('names the bootstrap token', () => {
    expect(actorOf({ kind: 'bootstrap' })).toEqual({
      type: 'bootstrap',
      id: 'bootstrap',
      name: 'bootstrap token',
    });
  });

  it('names an operator by id and name, without tenant or role', () => {
    expect(actorOf(operator('auditor'))).toEqual({ type: 'operator', id: 'op_1', name: 'Ada' });
  });

  it('names a system caller', () => {
    expect(actorOf({ kind: 'system', id: 'scheduler', name: 'rotation job', tenantId: null })).toEqual({
      type: 'system',
      id: 'scheduler',
      name: 'rotation job',
    });
  });
});

describe('operator tokens', () => {
  it('issues kwop_ and 43 base62 characters, with its SHA-256 and a 12-character prefix', () => {
    const { token, hash, prefix } = issueOperatorToken();
    expect(token).toMatch(/^kwop_[0-9A-Za-z]{43}$/);
    expect(token.startsWith(OPERATOR_TOKEN_PREFIX)).toBe(true);
    expect(hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(prefix).toHaveLength(12);
    expect(token.startsWith(prefix)).toBe(true);
  });

  it('issues a different token every time', () => {
    const tokens = Array.from({ length: 100 }, () => issueOperatorToken());
    expect(new Set(tokens.map((t) => t.token)).size).toBe(100);
    expect(new Set(tokens.map((t) => t.hash)).size).toBe(100);
  });

  it('sha256Hex is SHA-256 in hex', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('isOperatorTokenForm accepts an issued token', () => {
    expect(isOperatorTokenForm(issueOperatorToken().token)).toBe(true);
    expect(isOperatorTokenForm(`kwop_${'A'.repeat(43)}`)).toBe(true);
  });

  it.each([
    ['42 characters', `kwop_${'a'.repeat(42)}`],
    ['44 characters', `kwop_${'a'.repeat(44)}`],
    ['a character outside base62', `kwop_${'a'.repeat(42)}-`],
    ['another prefix', `kwsa_${'a'.repeat(43)}`],
    ['an upper-case prefix', `KWOP_${'a'.repeat(43)}`],
    ['no prefix', 'a'.repeat(48)],
    ['a trailing newline', `kwop_${'a'.repeat(43)}\n`],
    ['a leading space', ` kwop_${'a'.repeat(43)}`],
    ['empty', ''],
  ])('isOperatorTokenForm rejects %s', (_, value) => {
    expect(isOperatorTokenForm(value)).toBe(false);
  });
});

describe('secretsEqual', () => {
  it('is true for equal secrets', () => {
    const { token } = issueOperatorToken();
    expect(secretsEqual(token, `${token}`)).toBe(true);
    expect(secretsEqual('', '')).toBe(true);
  });

  it('is false for secrets that differ anywhere or in length, without throwing', () => {
    const { token } = issueOperatorToken();
    const flip = (i: number) => token.slice(0, i) + (token[i] === 'a' ? 'b' : 'a') + token.slice(i + 1);
    expect(secretsEqual(token, flip(0))).toBe(false);
    expect(secretsEqual(token, flip(20))).toBe(false);
    expect(secretsEqual(token, flip(token.length - 1))).toBe(false);
    expect(secretsEqual(token, token.slice(0, -1))).toBe(false);
    expect(secretsEqual(token, `${token}x`)).toBe(false);
    expect(secretsEqual(token, '')).toBe(false);
  });
});
