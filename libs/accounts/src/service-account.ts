import { Conflict, NotFound, ValidationFailed, canonicalJson, type FieldError } from '@keyward/core';
import {
  ACCOUNT_NAME,
  ENVIRONMENTS,
  LIMITS,
  boundaryError,
  cidrError,
  normalizedSet,
  scopeError,
} from './rules';
import type {
  RotationPolicy,
  ServiceAccountChanges,
  ServiceAccountCreatedV1,
  ServiceAccountEvent,
} from './service-account.events';

/**
 * The service account aggregate: plain functions, no framework, no SQL.
 * `decide*` turn a command and the current state into events (or throw a domain error);
 * `evolve` folds one event into the state. The command side, the inline projection and as-of
 * replay all fold with the same `evolve`.
 */
export type ServiceAccountStatus = 'active' | 'disabled' | 'deleted';

/** The state: everything the account was created with, as changed since, and its lifecycle. */
export interface ServiceAccount extends ServiceAccountCreatedV1 {
  status: ServiceAccountStatus;
  createdAt: Date;
  updatedAt: Date;
  /** The stream version this state was folded up to. */
  version: number;
}

/** An event with the facts the fold needs from its envelope. */
export type ServiceAccountFact = ServiceAccountEvent & { occurredAt: Date };

export function evolve(state: ServiceAccount | null, event: ServiceAccountFact): ServiceAccount {
  if (event.type === 'ServiceAccountCreated') {
    const d = event.data;
    return {
      ...d,
      status: 'active',
      createdAt: event.occurredAt,
      updatedAt: event.occurredAt,
      version: 1,
    };
  }
  if (!state) throw new Error(`${event.type} before ServiceAccountCreated`);
  const next: ServiceAccount = { ...state, updatedAt: event.occurredAt, version: state.version + 1 };
  switch (event.type) {
    case 'ServiceAccountUpdated':
      return { ...next, ...event.data.changes };
    case 'ServiceAccountDisabled':
      return { ...next, status: 'disabled' };
    case 'ServiceAccountEnabled':
      return { ...next, status: 'active' };
    case 'ServiceAccountDeleted':
      return { ...next, status: 'deleted' };
    case 'ScopesGranted':
      return { ...next, allowedScopes: normalizedSet([...state.allowedScopes, ...event.data.scopes]) };
    case 'ScopeRevoked':
      return { ...next, allowedScopes: state.allowedScopes.filter((s) => s !== event.data.scope) };
  }
}

export function fold(events: readonly ServiceAccountFact[]): ServiceAccount | null {
  return events.reduce<ServiceAccount | null>(evolve, null);
}

// ---- decisions ----

export type NewServiceAccount = ServiceAccountCreatedV1;

export function decideCreate(command: NewServiceAccount): ServiceAccountEvent[] {
  const errors: FieldError[] = [];
  if (!ACCOUNT_NAME.test(command.name))
    errors.push({ field: 'name', message: 'must be 3 to 64 of [a-z0-9-]' });
  if (!ENVIRONMENTS.includes(command.environment)) {
    errors.push({ field: 'environment', message: `must be one of ${ENVIRONMENTS.join(', ')}` });
  }
  checkOwners(command, errors);
  checkList('allowedScopes', command.allowedScopes, LIMITS.scopes, scopeError, errors);
  checkList('boundaries', command.boundaries, LIMITS.boundaries, boundaryError, errors);
  checkList('allowedCidrs', command.allowedCidrs, LIMITS.cidrs, cidrError, errors);
  checkRotationPolicy(command.rotationPolicy, errors);
  if (errors.length) throw new ValidationFailed('the service account is not valid', errors);
  return [
    {
      type: 'ServiceAccountCreated',
      data: {
        ...command,
        allowedScopes: normalizedSet(command.allowedScopes),
        boundaries: normalizedSet(command.boundaries),
        allowedCidrs: normalizedSet(command.allowedCidrs),
      },
    },
  ];
}

/** Records only what actually changes; no change, no event. */
export function decideUpdate(state: ServiceAccount, changes: ServiceAccountChanges): ServiceAccountEvent[] {
  assertNotDeleted(state, 'changed');
  const errors: FieldError[] = [];
  // These have no "none": a null would otherwise slip past the checks below into the state.
  for (const field of [
    'name',
    'businessOwner',
    'technicalOwner',
    'boundaries',
    'allowedCidrs',
    'abuseDetection',
  ] as const) {
    if (changes[field] === null) errors.push({ field, message: 'may be left out but not be null' });
  }
  if (errors.length) throw new ValidationFailed('the change is not valid', errors);
  if (changes.name !== undefined && !ACCOUNT_NAME.test(changes.name)) {
    errors.push({ field: 'name', message: 'must be 3 to 64 of [a-z0-9-]' });
  }
  checkOwners(changes, errors);
  if (changes.boundaries)
    checkList('boundaries', changes.boundaries, LIMITS.boundaries, boundaryError, errors);
  if (changes.allowedCidrs) checkList('allowedCidrs', changes.allowedCidrs, LIMITS.cidrs, cidrError, errors);
  if (changes.rotationPolicy !== undefined) checkRotationPolicy(changes.rotationPolicy, errors);
  if (errors.length) throw new ValidationFailed('the change is not valid', errors);

  const normalized: ServiceAccountChanges = { ...changes };
  if (changes.boundaries) normalized.boundaries = normalizedSet(changes.boundaries);
  if (changes.allowedCidrs) normalized.allowedCidrs = normalizedSet(changes.allowedCidrs);
  const effective: ServiceAccountChanges = {};
  for (const [field, value] of Object.entries(normalized) as [keyof ServiceAccountChanges, unknown][]) {
    if (value === undefined) continue;
    // Key order is no change: a rotationPolicy sent as { notifyBeforeDays, maxKeyAgeDays, ... } is the same policy.
    if (canonicalJson(value) !== canonicalJson(state[field])) Object.assign(effective, { [field]: value });
  }
  return Object.keys(effective).length
    ? [{ type: 'ServiceAccountUpdated', data: { changes: effective } }]
    : [];
}

export function decideDisable(state: ServiceAccount): ServiceAccountEvent[] {
  assertNotDeleted(state, 'disabled');
  if (state.status === 'disabled') throw new Conflict(`service account ${state.id} is already disabled`);
  return [{ type: 'ServiceAccountDisabled', data: {} }];
}

export function decideEnable(state: ServiceAccount): ServiceAccountEvent[] {
  assertNotDeleted(state, 'enabled');
  if (state.status === 'active') throw new Conflict(`service account ${state.id} is already active`);
  return [{ type: 'ServiceAccountEnabled', data: {} }];
}

export function decideDelete(state: ServiceAccount): ServiceAccountEvent[] {
  assertNotDeleted(state, 'deleted again');
  return [{ type: 'ServiceAccountDeleted', data: {} }];
}

/**
 * Widens the ceiling with the scopes it does not hold yet. Whether a grant needs a second
 * person's approval is decided by the caller of this function (see grant-gate.ts); this only
 * records a grant that may apply.
 */
export function decideGrantScopes(state: ServiceAccount, scopes: readonly string[]): ServiceAccountEvent[] {
  assertNotDeleted(state, 'changed');
  const errors: FieldError[] = [];
  checkList('scopes', scopes, LIMITS.scopes, scopeError, errors);
  if (scopes.length === 0) errors.push({ field: 'scopes', message: 'must name at least one scope' });
  if (errors.length) throw new ValidationFailed('the scopes are not valid', errors);
  const added = normalizedSet(scopes).filter((s) => !state.allowedScopes.includes(s));
  if (state.allowedScopes.length + added.length > LIMITS.scopes) {
    throw new ValidationFailed('too many scopes', [
      { field: 'scopes', message: `an account holds at most ${LIMITS.scopes} scopes` },
    ]);
  }
  return added.length ? [{ type: 'ScopesGranted', data: { scopes: added } }] : [];
}

export function decideRevokeScope(state: ServiceAccount, scope: string): ServiceAccountEvent[] {
  assertNotDeleted(state, 'changed');
  if (!state.allowedScopes.includes(scope)) {
    throw new NotFound(`service account ${state.id} does not hold the scope ${scope}`);
  }
  return [{ type: 'ScopeRevoked', data: { scope } }];
}

/** A change based on a version the caller saw that is no longer current (If-Match). */
export function assertVersion(state: ServiceAccount, expectedVersion: number | undefined): void {
  if (expectedVersion !== undefined && expectedVersion !== state.version) {
    throw new Conflict(`service account ${state.id} is at version ${state.version}, not ${expectedVersion}`, {
      expectedVersion,
      actualVersion: state.version,
    });
  }
}

function assertNotDeleted(state: ServiceAccount, what: string): void {
  if (state.status === 'deleted')
    throw new Conflict(`service account ${state.id} is deleted and cannot be ${what}`);
}

function checkOwners(
  fields: { businessOwner?: string; technicalOwner?: string },
  errors: FieldError[],
): void {
  for (const field of ['businessOwner', 'technicalOwner'] as const) {
    const value = fields[field];
    if (value !== undefined && (value.trim().length === 0 || value.length > LIMITS.owner)) {
      errors.push({ field, message: `must be 1 to ${LIMITS.owner} characters` });
    }
  }
}

function checkList(
  field: string,
  values: readonly string[],
  max: number,
  check: (value: string) => string | null,
  errors: FieldError[],
): void {
  if (values.length > max) errors.push({ field, message: `at most ${max} entries` });
  values.forEach((value, i) => {
    const message = check(value);
    if (message) errors.push({ field: `${field}[${i}]`, message });
  });
}

function checkRotationPolicy(policy: RotationPolicy | null, errors: FieldError[]): void {
  if (!policy) return;
  const { maxKeyAgeDays, notifyBeforeDays } = policy;
  if (!Number.isInteger(maxKeyAgeDays) || maxKeyAgeDays < 1 || maxKeyAgeDays > LIMITS.maxKeyAgeDays) {
    errors.push({
      field: 'rotationPolicy.maxKeyAgeDays',
      message: `must be a whole number from 1 to ${LIMITS.maxKeyAgeDays}`,
    });
  }
  if (!Number.isInteger(notifyBeforeDays) || notifyBeforeDays < 0 || notifyBeforeDays >= maxKeyAgeDays) {
    errors.push({
      field: 'rotationPolicy.notifyBeforeDays',
      message: 'must be a whole number from 0 to less than maxKeyAgeDays',
    });
  }
}
