import { ID_PREFIX, newId } from '@keyward/core';
import { issueKeySecret, parseKey } from './key-secret';
import {
  decide,
  DENIAL_CODES,
  parseCandidate,
  type DenialCode,
  type KeyRecord,
  type VerifyRequest,
} from './verify';

// API.md "Verify (the hot path)": { valid: false, code } with code the first that holds, in order
// MALFORMED, UNKNOWN, REVOKED, EXPIRED, ACCOUNT_DISABLED, ENVIRONMENT_MISMATCH, IP_NOT_ALLOWED,
// INSUFFICIENT_SCOPE, OUT_OF_BOUNDARY, RATE_LIMITED.

const T0 = new Date('2026-03-01T09:00:00.000Z');
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const after = (ms: number): Date => new Date(T0.getTime() + ms);
const NOW = after(HOUR);

const keyId = newId(ID_PREFIX.key);
const issued = issueKeySecret(keyId, 'production');

type Overrides = { key?: Partial<KeyRecord['key']>; account?: Partial<KeyRecord['account']> };

function record(overrides: Overrides = {}): KeyRecord {
  return {
    key: {
      id: keyId,
      tenantId: 'acme',
      serviceAccountId: 'sa_00000000000000000001',
      secretHash: issued.hash,
      environment: 'production',
      scopes: ['summaries:draft', 'tickets:read'],
      boundaries: ['site:plant-7/asset-group:pumps'],
      allowedCidrs: ['10.20.1.0/24'],
      rateLimit: { limit: 100, windowSeconds: 60 },
      expiresAt: after(90 * DAY).toISOString(),
      graceEndsAt: null,
      revokedAt: null,
      expiredAt: null,
      ...overrides.key,
    },
    account: {
      id: 'sa_00000000000000000001',
      name: 'nightly-digest-summariser',
      environment: 'production',
      status: 'active',
      boundaries: ['site:plant-7'],
      allowedCidrs: ['10.20.0.0/16'],
      ...overrides.account,
    },
  };
}

/** The request of API.md's example: every check applies and passes. */
function request(overrides: Partial<VerifyRequest> = {}): VerifyRequest {
  return {
    key: issued.secret,
    scope: 'tickets:read',
    resource: 'site:plant-7/asset-group:pumps/asset:P-101',
    environment: 'production',
    source: { ip: '10.20.1.7', system: 'helpdesk' },
    ...overrides,
  };
}

function codeOf(
  rec: KeyRecord | null,
  req: VerifyRequest = request(),
  now: Date = NOW,
): DenialCode | 'VALID' {
  const decision = decide(req.key, rec, req, now);
  return decision.valid ? 'VALID' : decision.code;
}

// Each fault breaks one check; applied together they show which one wins.
const REVOKED = { key: { revokedAt: after(HOUR / 2) } };
const EXPIRED = { key: { expiresAt: after(HOUR / 2).toISOString() } };
const DISABLED = { account: { status: 'disabled' } };
const ENV_MISMATCH: Partial<VerifyRequest> = { environment: 'staging' };
const BAD_IP: Partial<VerifyRequest> = { source: { ip: '192.168.1.1', system: 'helpdesk' } };
const BAD_SCOPE: Partial<VerifyRequest> = { scope: 'tickets:write' };
const BAD_RESOURCE: Partial<VerifyRequest> = { resource: 'site:plant-70/asset:1' };

function merge(...parts: Overrides[]): Overrides {
  return {
    key: Object.assign({}, ...parts.map((p) => p.key ?? {})),
    account: Object.assign({}, ...parts.map((p) => p.account ?? {})),
  };
}

describe('DENIAL_CODES', () => {
  it('lists the codes of API.md in its order', () => {
    expect(DENIAL_CODES).toEqual([
      'MALFORMED',
      'UNKNOWN',
      'REVOKED',
      'EXPIRED',
      'ACCOUNT_DISABLED',
      'ENVIRONMENT_MISMATCH',
      'IP_NOT_ALLOWED',
      'INSUFFICIENT_SCOPE',
      'OUT_OF_BOUNDARY',
      'RATE_LIMITED',
    ]);
  });
});

describe('parseCandidate (the MALFORMED step, before any lookup)', () => {
  it('accepts the issued key and names its id part', () => {
    expect(parseCandidate(issued.secret)).toEqual(parseKey(issued.secret));
    expect(parseCandidate(issued.secret)?.idPart).toBe(keyId.slice(ID_PREFIX.key.length));
  });

  it('refuses a mangled key, an empty one and a truncated one', () => {
    const last = issued.secret.at(-1) === 'A' ? 'B' : 'A';
    expect(parseCandidate(issued.secret.slice(0, -1) + last)).toBeNull();
    expect(parseCandidate('')).toBeNull();
    expect(parseCandidate(issued.prefix)).toBeNull();
  });
});

describe('decide', () => {
  it('given a good key and a request every check passes, then valid with the record', () => {
    const rec = record();
    expect(decide(issued.secret, rec, request(), NOW)).toEqual({ valid: true, record: rec });
  });

  describe('UNKNOWN', () => {
    it('when no record was found, then UNKNOWN and no record', () => {
      expect(decide(issued.secret, null, request(), NOW)).toEqual({
        valid: false,
        code: 'UNKNOWN',
        record: null,
      });
    });

    it('when another key has the same id part (the hash differs), then UNKNOWN and no record', () => {
      const impostor = issueKeySecret(keyId, 'production');
      expect(parseKey(impostor.secret)?.idPart).toBe(parseKey(issued.secret)?.idPart);
      expect(impostor.hash).not.toBe(issued.hash);
      const req = request({ key: impostor.secret });
      expect(decide(impostor.secret, record(), req, NOW)).toEqual({
        valid: false,
        code: 'UNKNOWN',
        record: null,
      });
    });

    it('when the key is unknown, then UNKNOWN beats every later fault', () => {
      const broken = record(merge(REVOKED, EXPIRED, DISABLED));
      expect(
        codeOf(broken, request({ key: issueKeySecret(keyId, 'production').secret, ...ENV_MISMATCH })),
      ).toBe('UNKNOWN');
      expect(codeOf(null, request({ ...ENV_MISMATCH, ...BAD_IP, ...BAD_SCOPE, ...BAD_RESOURCE }))).toBe(
        'UNKNOWN',
      );
    });

    it('when a mangled key reaches decide, then it is never valid', () => {
      const mangled = issued.secret.slice(0, -1) + (issued.secret.at(-1) === 'A' ? 'B' : 'A');
      expect(codeOf(record(), request({ key: mangled }))).toBe('UNKNOWN');
      expect(codeOf(record(), request({ key: '' }))).toBe('UNKNOWN');
      expect(codeOf(record({ key: { secretHash: '' } }), request({ key: '' }))).toBe('UNKNOWN');
    });
  });

  describe('the first code that holds wins, in API.md order', () => {
    it('revoked AND expired with a disabled account, and every request fault: REVOKED', () => {
      const req = request({ ...ENV_MISMATCH, ...BAD_IP, ...BAD_SCOPE, ...BAD_RESOURCE });
      expect(codeOf(record(merge(REVOKED, EXPIRED, DISABLED)), req)).toBe('REVOKED');
    });

    it('expired with a disabled account: EXPIRED', () => {
      expect(codeOf(record(merge(EXPIRED, DISABLED)), request(ENV_MISMATCH))).toBe('EXPIRED');
    });

    it('disabled account with an environment mismatch: ACCOUNT_DISABLED', () => {
      expect(codeOf(record(DISABLED), request({ ...ENV_MISMATCH, ...BAD_IP }))).toBe('ACCOUNT_DISABLED');
    });

    it('environment mismatch with a bad ip: ENVIRONMENT_MISMATCH', () => {
      expect(codeOf(record(), request({ ...ENV_MISMATCH, ...BAD_IP, ...BAD_SCOPE }))).toBe(
        'ENVIRONMENT_MISMATCH',
      );
    });

    it('bad ip with a bad scope: IP_NOT_ALLOWED', () => {
      expect(codeOf(record(), request({ ...BAD_IP, ...BAD_SCOPE, ...BAD_RESOURCE }))).toBe('IP_NOT_ALLOWED');
    });

    it('bad scope with a bad resource: INSUFFICIENT_SCOPE', () => {
      expect(codeOf(record(), request({ ...BAD_SCOPE, ...BAD_RESOURCE }))).toBe('INSUFFICIENT_SCOPE');
    });

    it('bad resource alone: OUT_OF_BOUNDARY', () => {
      expect(codeOf(record(), request(BAD_RESOURCE))).toBe('OUT_OF_BOUNDARY');
    });

    it('removing the faults one at a time walks the codes in order, then valid', () => {
      const recordFaults: Overrides[] = [REVOKED, EXPIRED, DISABLED];
      const requestFaults: Partial<VerifyRequest>[] = [ENV_MISMATCH, BAD_IP, BAD_SCOPE, BAD_RESOURCE];
      const seen: string[] = [];
      for (let skip = 0; skip <= recordFaults.length + requestFaults.length; skip++) {
        const rec = record(merge(...recordFaults.slice(skip)));
        const req = request(
          Object.assign({}, ...requestFaults.slice(Math.max(0, skip - recordFaults.length))),
        );
        seen.push(codeOf(rec, req));
      }
      expect(seen).toEqual([
        'REVOKED',
        'EXPIRED',
        'ACCOUNT_DISABLED',
        'ENVIRONMENT_MISMATCH',
        'IP_NOT_ALLOWED',
        'INSUFFICIENT_SCOPE',
        'OUT_OF_BOUNDARY',
        'VALID',
      ]);
      // The order of the codes decide answers is the order of DENIAL_CODES.
      const codes = seen.filter((c): c is DenialCode => c !== 'VALID').map((c) => DENIAL_CODES.indexOf(c));
      expect(codes).toEqual([...codes].sort((a, b) => a - b));
    });

    it('decide leaves RATE_LIMITED to the caller: a good key is valid however it is used', () => {
      expect(codeOf(record({ key: { rateLimit: { limit: 0, windowSeconds: 1 } } }))).toBe('VALID');
    });
  });

  describe('REVOKED and EXPIRED', () => {
    it('a revoked key is REVOKED from its revocation on', () => {
      expect(codeOf(record({ key: { revokedAt: NOW } }))).toBe('REVOKED');
    });

    it('a key is EXPIRED at exactly its expiresAt, valid a millisecond before', () => {
      const rec = record({ key: { expiresAt: NOW.toISOString() } });
      expect(codeOf(rec, request(), NOW)).toBe('EXPIRED');
      expect(codeOf(rec, request(), new Date(NOW.getTime() - 1))).toBe('VALID');
    });

    it('a key with a KeyExpired recorded is EXPIRED before its expiresAt', () => {
      expect(codeOf(record({ key: { expiredAt: T0 } }))).toBe('EXPIRED');
    });

    it('a rotated key is valid during its grace and EXPIRED at its end', () => {
      const rec = record({ key: { graceEndsAt: after(2 * HOUR).toISOString() } });
      expect(codeOf(rec, request(), NOW)).toBe('VALID');
      expect(codeOf(rec, request(), after(2 * HOUR))).toBe('EXPIRED');
    });
  });

  describe('ACCOUNT_DISABLED', () => {
    it.each(['disabled', 'deleted'])('an account %s refuses its keys', (status) => {
      expect(codeOf(record({ account: { status } }))).toBe('ACCOUNT_DISABLED');
    });
  });

  describe('ENVIRONMENT_MISMATCH', () => {
    it.each(['staging', 'development', 'live', 'Production', ''])(
      'asking for %j of a production key',
      (env) => {
        expect(codeOf(record(), request({ environment: env }))).toBe('ENVIRONMENT_MISMATCH');
      },
    );

    it('the key environment is what counts', () => {
      const rec = record({ key: { environment: 'staging' } });
      expect(codeOf(rec, request({ environment: 'staging' }))).toBe('VALID');
      expect(codeOf(rec, request({ environment: 'production' }))).toBe('ENVIRONMENT_MISMATCH');
    });
  });

  describe('IP_NOT_ALLOWED: both the account and the key CIDRs apply', () => {
    const ipRequest = (ip: string | undefined) => request({ source: { ip, system: 'helpdesk' } });

    it('an address in both ranges passes', () => {
      expect(codeOf(record(), ipRequest('10.20.1.200'))).toBe('VALID');
    });

    it('an address in the account range but not the key range is refused', () => {
      expect(codeOf(record(), ipRequest('10.20.2.7'))).toBe('IP_NOT_ALLOWED');
    });

    it('an address in the key range but not the account range is refused', () => {
      const rec = record({ key: { allowedCidrs: ['10.30.0.0/16'] } });
      expect(codeOf(rec, ipRequest('10.30.1.1'))).toBe('IP_NOT_ALLOWED');
    });

    it('only the account has CIDRs: they apply', () => {
      const rec = record({ key: { allowedCidrs: [] } });
      expect(codeOf(rec, ipRequest('10.20.9.9'))).toBe('VALID');
      expect(codeOf(rec, ipRequest('10.21.9.9'))).toBe('IP_NOT_ALLOWED');
    });

    it('only the key has CIDRs: they apply', () => {
      const rec = record({ account: { allowedCidrs: [] } });
      expect(codeOf(rec, ipRequest('10.20.1.9'))).toBe('VALID');
      expect(codeOf(rec, ipRequest('10.20.2.9'))).toBe('IP_NOT_ALLOWED');
    });

    it('IPv6 ranges apply the same way', () => {
      const rec = record({
        account: { allowedCidrs: ['2001:db8::/32'] },
        key: { allowedCidrs: ['2001:db8:1::/48'] },
      });
      expect(codeOf(rec, ipRequest('2001:db8:1::7'))).toBe('VALID');
      expect(codeOf(rec, ipRequest('2001:db8:2::7'))).toBe('IP_NOT_ALLOWED');
      expect(codeOf(rec, ipRequest('10.20.1.7'))).toBe('IP_NOT_ALLOWED');
    });

    it('with CIDRs, an omitted ip, an omitted source or a garbage ip is refused', () => {
      expect(codeOf(record(), ipRequest(undefined))).toBe('IP_NOT_ALLOWED');
      expect(codeOf(record(), request({ source: undefined }))).toBe('IP_NOT_ALLOWED');
      expect(codeOf(record(), request({ source: { system: 'helpdesk' } }))).toBe('IP_NOT_ALLOWED');
      expect(codeOf(record(), ipRequest('not-an-ip'))).toBe('IP_NOT_ALLOWED');
      // Only account CIDRs, and only key CIDRs: each alone is enough to require an address.
      expect(codeOf(record({ key: { allowedCidrs: [] } }), ipRequest(undefined))).toBe('IP_NOT_ALLOWED');
      expect(codeOf(record({ account: { allowedCidrs: [] } }), ipRequest(undefined))).toBe('IP_NOT_ALLOWED');
    });

    it('with no CIDRs anywhere, the source is optional', () => {
      const rec = record({ key: { allowedCidrs: [] }, account: { allowedCidrs: [] } });
      expect(codeOf(rec, request({ source: undefined }))).toBe('VALID');
      expect(codeOf(rec, ipRequest('203.0.113.9'))).toBe('VALID');
    });

    it('with no CIDRs anywhere, a source ip that is not an address is still refused', () => {
      const rec = record({ key: { allowedCidrs: [] }, account: { allowedCidrs: [] } });
      for (const ip of ['999.1.1.1', '10.0.0.1/33', '', 'not-an-ip', 'fe80::1%eth0', '10.0.0.1, 10.0.0.2']) {
        expect({ ip, code: codeOf(rec, ipRequest(ip)) }).toEqual({ ip, code: 'IP_NOT_ALLOWED' });
      }
    });

    it('a malformed source ip comes after ENVIRONMENT_MISMATCH and before INSUFFICIENT_SCOPE', () => {
      const rec = record({ key: { allowedCidrs: [] }, account: { allowedCidrs: [] } });
      const malformed = { source: { ip: '999.1.1.1' } };
      expect(codeOf(rec, request({ ...ENV_MISMATCH, ...malformed }))).toBe('ENVIRONMENT_MISMATCH');
      expect(codeOf(rec, request({ ...malformed, ...BAD_SCOPE, ...BAD_RESOURCE }))).toBe('IP_NOT_ALLOWED');
    });
  });

  describe('INSUFFICIENT_SCOPE', () => {
    it('a scope the key does not carry is refused, even one in the account ceiling', () => {
      expect(codeOf(record(), request({ scope: 'tickets:write' }))).toBe('INSUFFICIENT_SCOPE');
      expect(codeOf(record(), request({ scope: 'orders:read' }))).toBe('INSUFFICIENT_SCOPE');
      expect(codeOf(record(), request({ scope: 'tickets:*' }))).toBe('INSUFFICIENT_SCOPE');
      expect(codeOf(record(), request({ scope: '' }))).toBe('INSUFFICIENT_SCOPE');
    });

    it('a key with product:* passes any action of the product, not a lookalike product', () => {
      const rec = record({ key: { scopes: ['tickets:*'] } });
      expect(codeOf(rec, request({ scope: 'tickets:write' }))).toBe('VALID');
      expect(codeOf(rec, request({ scope: 'ticketsx:read' }))).toBe('INSUFFICIENT_SCOPE');
    });

    it('a key whose scopes were all narrowed away passes no scope', () => {
      expect(codeOf(record({ key: { scopes: [] } }), request({ scope: 'tickets:read' }))).toBe(
        'INSUFFICIENT_SCOPE',
      );
    });
  });

  describe('OUT_OF_BOUNDARY', () => {
    it('the key boundaries apply, by whole segments', () => {
      expect(codeOf(record(), request({ resource: 'site:plant-7/asset-group:pumps' }))).toBe('VALID');
      expect(codeOf(record(), request({ resource: 'site:plant-7/asset-group:pumpsx' }))).toBe(
        'OUT_OF_BOUNDARY',
      );
      // Inside the account boundary but outside the key's own: refused.
      expect(codeOf(record(), request({ resource: 'site:plant-7/asset-group:valves' }))).toBe(
        'OUT_OF_BOUNDARY',
      );
      expect(codeOf(record(), request({ resource: 'site:plant-7' }))).toBe('OUT_OF_BOUNDARY');
    });

    it('a key with no boundaries inherits the account boundaries', () => {
      const rec = record({ key: { boundaries: [] } });
      expect(codeOf(rec, request({ resource: 'site:plant-7' }))).toBe('VALID');
      expect(codeOf(rec, request({ resource: 'site:plant-7/asset-group:valves' }))).toBe('VALID');
      expect(codeOf(rec, request({ resource: 'site:plant-70' }))).toBe('OUT_OF_BOUNDARY');
      expect(codeOf(rec, request({ resource: 'site:plant-8/asset:1' }))).toBe('OUT_OF_BOUNDARY');
    });

    it('a key and an account with no boundaries are unbounded, whatever the resource is written like', () => {
      const rec = record({ key: { boundaries: [] }, account: { boundaries: [] } });
      expect(codeOf(rec, request({ resource: 'anything/at:all' }))).toBe('VALID');
      expect(codeOf(rec, request({ resource: 'site:plant-7/../plant-8' }))).toBe('VALID');
      expect(codeOf(rec, request({ resource: '' }))).toBe('VALID');
    });

    it.each([
      'site:plant-7/../plant-8',
      'site:plant-7/asset-group:pumps/../../site:plant-8',
      'site:plant-7/asset-group:pumps/./asset:1',
      'site:plant-7/asset-group:pumps/',
      'site:plant-7/asset-group:pumps//asset:1',
      'site:plant-7/asset-group:pumps/%2e%2e',
      'site:plant-7/asset-group:pumps/asset:..',
      'site:plant-7/asset-group:pumps\\..',
      '',
    ])('a resource that is not canonical is OUT_OF_BOUNDARY under the key or the account: %j', (resource) => {
      expect(codeOf(record(), request({ resource }))).toBe('OUT_OF_BOUNDARY');
      expect(codeOf(record({ key: { boundaries: [] } }), request({ resource }))).toBe('OUT_OF_BOUNDARY');
    });

    it('a non-canonical resource does not hide an earlier fault', () => {
      const resource = 'site:plant-7/../plant-8';
      expect(codeOf(record(), request({ resource, ...BAD_SCOPE }))).toBe('INSUFFICIENT_SCOPE');
      expect(codeOf(record(), request({ resource, ...BAD_IP }))).toBe('IP_NOT_ALLOWED');
    });
  });

  describe('scope, resource, environment and source are optional', () => {
    it('each omitted on its own skips only its check', () => {
      expect(codeOf(record(), request({ scope: undefined }))).toBe('VALID');
      expect(codeOf(record(), request({ resource: undefined }))).toBe('VALID');
      expect(codeOf(record(), request({ environment: undefined }))).toBe('VALID');
      expect(
        codeOf(
          record({ key: { allowedCidrs: [] }, account: { allowedCidrs: [] } }),
          request({ source: undefined }),
        ),
      ).toBe('VALID');
    });

    it('a bare key with nothing else is valid when no CIDRs apply', () => {
      const rec = record({ key: { allowedCidrs: [] }, account: { allowedCidrs: [] } });
      expect(decide(issued.secret, rec, { key: issued.secret }, NOW)).toEqual({ valid: true, record: rec });
    });

    it('an omitted scope or resource does not hide the other faults', () => {
      expect(codeOf(record(), request({ scope: undefined, ...BAD_RESOURCE }))).toBe('OUT_OF_BOUNDARY');
      expect(codeOf(record(), request({ resource: undefined, ...BAD_SCOPE }))).toBe('INSUFFICIENT_SCOPE');
      expect(codeOf(record(), request({ environment: undefined, ...BAD_IP }))).toBe('IP_NOT_ALLOWED');
    });
  });

  it('a denial carries the record for usage counting; the caller answers only the code', () => {
    const rec = record(DISABLED);
    expect(decide(issued.secret, rec, request(), NOW)).toEqual({
      valid: false,
      code: 'ACCOUNT_DISABLED',
      record: rec,
    });
  });
});
