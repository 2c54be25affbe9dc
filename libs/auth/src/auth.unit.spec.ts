import { createHash } from 'node:crypto';
import { Forbidden } from '@keyward/core';
import { actorOf, callerAllows, requirePermission, type Caller } from './caller';
import {
  OPERATOR_TOKEN_PREFIX,
  isOperatorTokenForm,
  issueOperatorToken,
  secretsEqual,
  sha256Hex,
} from './operator-token';
import {
  GOVERNANCE_SCOPES,
  NOT_FOR_SERVICE_ACCOUNTS,
  ROLES,
  ROLE_SCOPES,
  scopesAllow,
  type Permission,
  type Role,
} from './roles';

const GOVERNANCE = [...GOVERNANCE_SCOPES];

const PERMISSIONS: Permission[] = [
  'manage',
  'read',
  'audit',
  'approve',
  'verify',
  'manage-operators',
  'widen-ceiling',
  'set-secret-delivery',
  'change-policy',
];

/** API.md "Callers and credentials": what each role may do. */
const ALLOWED: Record<Role | 'bootstrap', Permission[]> = {
  admin: PERMISSIONS,
  approver: ['read', 'approve'],
  auditor: ['read', 'audit'],
  verifier: ['verify'],
  bootstrap: ['manage-operators'],
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

  it.each(PERMISSIONS.filter((p) => p !== 'manage-operators'))(
    'the bootstrap token may not %s tenant data',
    (permission) => {
      expect(callerAllows({ kind: 'bootstrap' }, permission)).toBe(false);
    },
  );

  it('the bootstrap token may manage operators', () => {
    expect(callerAllows({ kind: 'bootstrap' }, 'manage-operators')).toBe(true);
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
      [['keyward:*'], PERMISSIONS],
      [['tickets:read', 'keyward:Read', 'keyward:admin '], []],
    ])('%j allows exactly %j', (scopes, allowed) => {
      expect(PERMISSIONS.filter((p) => scopesAllow(scopes, p))).toEqual(allowed);
    });
  });
});

describe('a service-account key as caller', () => {
  const key = (scopes: string[]): Caller => ({
    kind: 'service-account',
    id: 'sa_1',
    keyId: 'key_1',
    tenantId: 'acme',
    name: 'pipeline',
    scopes,
  });

  it('never holds what only a person may do: operators, ceilings, secret delivery, policy, approval', () => {
    expect([...NOT_FOR_SERVICE_ACCOUNTS].sort()).toEqual(
      ['approve', 'change-policy', 'manage-operators', 'set-secret-delivery', 'widen-ceiling'].sort(),
    );
  });

  it.each([['keyward:admin'], ['keyward:*'], ['keyward:approve', 'keyward:read'], GOVERNANCE])(
    '%j holds exactly what its scopes allow, less what no key holds',
    (...scopes) => {
      const allowed = PERMISSIONS.filter((p) => callerAllows(key(scopes), p));
      expect(allowed).toEqual(
        PERMISSIONS.filter((p) => scopesAllow(scopes, p) && !NOT_FOR_SERVICE_ACCOUNTS.includes(p)),
      );
      for (const p of NOT_FOR_SERVICE_ACCOUNTS) expect(callerAllows(key(scopes), p)).toBe(false);
    },
  );

  it('keyward:admin still manages accounts and keys, reads, audits and verifies', () => {
    expect(PERMISSIONS.filter((p) => callerAllows(key(['keyward:admin']), p))).toEqual([
      'manage',
      'read',
      'audit',
      'verify',
    ]);
  });

  it('a person and the system keep every right a key lacks', () => {
    const system: Caller = { kind: 'system', id: 'cli', name: 'cli:ada', tenantId: 'acme' };
    for (const p of NOT_FOR_SERVICE_ACCOUNTS) {
      expect(callerAllows(operator('admin'), p)).toBe(true);
      expect(callerAllows(system, p)).toBe(true);
    }
  });
});

describe('requirePermission', () => {
  const adminKey: Caller = {
    kind: 'service-account',
    id: 'sa_1',
    keyId: 'key_1',
    tenantId: 'acme',
    name: 'pipeline',
    scopes: ['keyward:admin'],
  };

  it('passes a caller that holds the permission', () => {
    expect(() => requirePermission(operator('admin'), 'manage-operators')).not.toThrow();
    expect(() => requirePermission({ kind: 'bootstrap' }, 'manage-operators')).not.toThrow();
    expect(() => requirePermission(adminKey, 'manage')).not.toThrow();
  });

  it('refuses a key with Forbidden naming the permission and that no key holds it', () => {
    const refusal = (() => {
      try {
        requirePermission(adminKey, 'widen-ceiling');
      } catch (e) {
        return e;
      }
    })();
    expect(refusal).toBeInstanceOf(Forbidden);
    expect((refusal as Error).message).toContain('widen-ceiling');
    expect((refusal as Error).message).toContain('no service-account key holds');
  });

  it('refuses an operator without the scope, naming the scope', () => {
    expect(() => requirePermission(operator('auditor'), 'manage-operators')).toThrow(
      /manage-operators permission \(scope keyward:admin\)/,
    );
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
