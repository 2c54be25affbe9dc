import { Conflict, NotFound, ValidationFailed } from '@keyward/core';
import {
  TENANT_ID,
  decideCreateOperator,
  decideCreateTenant,
  decideDeleteOperator,
  evolveOperator,
  tenantStreamId,
  type Operator,
  type OperatorEvent,
} from './tenant';

type OperatorCreated = Extract<OperatorEvent, { type: 'OperatorCreated' }>;

const created = (overrides: Partial<OperatorCreated['data']> = {}): OperatorCreated => ({
  type: 'OperatorCreated',
  data: {
    id: 'op_00000000000000000001',
    tenantId: 'acme',
    name: 'Ada Lovelace',
    role: 'admin',
    tokenHash: 'a'.repeat(64),
    tokenPrefix: 'kwop_1234567',
    ...overrides,
  },
});

const T1 = new Date('2026-02-01T10:00:00.000Z');
const T2 = new Date('2026-02-03T16:30:00.000Z');

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

function fields(error: unknown): string[] {
  expect(error).toBeInstanceOf(ValidationFailed);
  return (error as ValidationFailed).errors.map((e) => e.field);
}

describe('decideCreateTenant', () => {
  it('answers TenantCreated for a new, valid tenant', () => {
    expect(decideCreateTenant(false, 'acme', 'Acme Corp')).toEqual([
      { type: 'TenantCreated', data: { id: 'acme', name: 'Acme Corp' } },
    ]);
  });

  it.each(['abc', '9lives', 'acme-co', 'a'.repeat(40), '0--'])('accepts the id %j', (id) => {
    expect(TENANT_ID.test(id)).toBe(true);
    expect(decideCreateTenant(false, id, 'Name')).toHaveLength(1);
  });

  it.each(['', 'ab', '-acme', 'Acme', 'acme_co', 'acme co', 'a'.repeat(41), 'acme\n', 'ácme'])(
    'rejects the id %j',
    (id) => {
      expect(fields(thrown(() => decideCreateTenant(false, id, 'Name')))).toEqual(['id']);
    },
  );

  it.each(['', '   ', 'n'.repeat(101)])('rejects the name %j', (name) => {
    expect(fields(thrown(() => decideCreateTenant(false, 'acme', name)))).toEqual(['name']);
  });

  it('accepts a name of 100 characters', () => {
    expect(decideCreateTenant(false, 'acme', 'n'.repeat(100))).toHaveLength(1);
  });

  it('lists both fields when both are bad', () => {
    expect(fields(thrown(() => decideCreateTenant(false, 'X', '')))).toEqual(['id', 'name']);
  });

  it('answers Conflict when the tenant exists', () => {
    const error = thrown(() => decideCreateTenant(true, 'acme', 'Acme Corp'));
    expect(error).toBeInstanceOf(Conflict);
    expect((error as Conflict).message).toContain('acme');
  });

  it('names the stream after the tenant', () => {
    expect(tenantStreamId('acme')).toBe('tenant-acme');
  });
});

describe('decideCreateOperator', () => {
  it.each(['admin', 'approver', 'auditor', 'verifier'] as const)(
    'records an operator with role %s',
    (role) => {
      const command = created({ role });
      expect(decideCreateOperator(command)).toEqual([command]);
    },
  );

  it.each(['root', 'Admin', '', 'bootstrap'])('rejects the role %j', (role) => {
    expect(fields(thrown(() => decideCreateOperator(created({ role: role as never }))))).toEqual(['role']);
  });

  it.each(['', '  ', 'n'.repeat(101)])('rejects the name %j', (name) => {
    expect(fields(thrown(() => decideCreateOperator(created({ name }))))).toEqual(['name']);
  });

  it('lists both fields when both are bad', () => {
    expect(fields(thrown(() => decideCreateOperator(created({ name: '', role: 'owner' as never }))))).toEqual(
      ['name', 'role'],
    );
  });
});

describe('operators', () => {
  const active: Operator = evolveOperator(null, { ...created(), occurredAt: T1 });

  it('evolve starts an active operator from OperatorCreated', () => {
    expect(active).toEqual({
      ...created().data,
      status: 'active',
      createdAt: T1,
      deletedAt: null,
      version: 1,
    });
  });

  it('evolve marks it deleted, keeping when it was made', () => {
    const gone = evolveOperator(active, { type: 'OperatorDeleted', data: {}, occurredAt: T2 });
    expect(gone).toEqual({ ...active, status: 'deleted', deletedAt: T2, version: 2 });
    expect(active.status).toBe('active');
  });

  it('evolve refuses OperatorDeleted before OperatorCreated', () => {
    expect(() => evolveOperator(null, { type: 'OperatorDeleted', data: {}, occurredAt: T2 })).toThrow(
      'OperatorDeleted before OperatorCreated',
    );
  });

  it('deletes an active operator', () => {
    expect(decideDeleteOperator(active)).toEqual([{ type: 'OperatorDeleted', data: {} }]);
  });

  it('answers NotFound for a missing operator', () => {
    expect(thrown(() => decideDeleteOperator(null))).toBeInstanceOf(NotFound);
  });

  it('answers Conflict for an operator deleted already', () => {
    const gone = evolveOperator(active, { type: 'OperatorDeleted', data: {}, occurredAt: T2 });
    const error = thrown(() => decideDeleteOperator(gone));
    expect(error).toBeInstanceOf(Conflict);
    expect((error as Conflict).message).toContain(active.id);
  });
});
