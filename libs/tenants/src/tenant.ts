import { Conflict, NotFound, ValidationFailed } from '@keyward/core';
import type { Role } from '@keyward/auth';
import { ROLES } from '@keyward/auth';

/**
 * Tenants and operators: plain decide/evolve like every aggregate. A tenant stream holds
 * `TenantCreated`; each operator has its own stream. Events carry the operator token's SHA-256
 * and visible prefix, never the token.
 */
export const TENANT_STREAM = 'tenant';
export const OPERATOR_STREAM = 'operator';

export const TENANT_ID = /^[a-z0-9][a-z0-9-]{2,39}$/;

export function tenantStreamId(tenantId: string): string {
  return `tenant-${tenantId}`;
}

export type TenantEvent = { type: 'TenantCreated'; data: { id: string; name: string } };

export type OperatorEvent =
  | {
      type: 'OperatorCreated';
      data: {
        id: string;
        tenantId: string;
        name: string;
        role: Role;
        tokenHash: string;
        tokenPrefix: string;
      };
    }
  | { type: 'OperatorDeleted'; data: Record<string, never> };

export interface Operator {
  id: string;
  tenantId: string;
  name: string;
  role: Role;
  tokenHash: string;
  tokenPrefix: string;
  status: 'active' | 'deleted';
  createdAt: Date;
  deletedAt: Date | null;
  version: number;
}

export function decideCreateTenant(exists: boolean, id: string, name: string): TenantEvent[] {
  const errors = [];
  if (!TENANT_ID.test(id))
    errors.push({ field: 'id', message: 'must be 3 to 40 of [a-z0-9-], starting with a letter or digit' });
  if (name.trim().length === 0 || name.length > 100)
    errors.push({ field: 'name', message: 'must be 1 to 100 characters' });
  if (errors.length) throw new ValidationFailed('the tenant is not valid', errors);
  if (exists) throw new Conflict(`tenant ${id} exists already`);
  return [{ type: 'TenantCreated', data: { id, name } }];
}

export function decideCreateOperator(command: OperatorEvent & { type: 'OperatorCreated' }): OperatorEvent[] {
  const { name, role } = command.data;
  const errors = [];
  if (name.trim().length === 0 || name.length > 100)
    errors.push({ field: 'name', message: 'must be 1 to 100 characters' });
  if (!ROLES.includes(role)) errors.push({ field: 'role', message: `must be one of ${ROLES.join(', ')}` });
  if (errors.length) throw new ValidationFailed('the operator is not valid', errors);
  return [command];
}

export function decideDeleteOperator(state: Operator | null): OperatorEvent[] {
  if (!state) throw new NotFound('no such operator');
  if (state.status === 'deleted') throw new Conflict(`operator ${state.id} is deleted already`);
  return [{ type: 'OperatorDeleted', data: {} }];
}

export function evolveOperator(
  state: Operator | null,
  event: OperatorEvent & { occurredAt: Date },
): Operator {
  if (event.type === 'OperatorCreated') {
    return { ...event.data, status: 'active', createdAt: event.occurredAt, deletedAt: null, version: 1 };
  }
  if (!state) throw new Error('OperatorDeleted before OperatorCreated');
  return { ...state, status: 'deleted', deletedAt: event.occurredAt, version: state.version + 1 };
}
