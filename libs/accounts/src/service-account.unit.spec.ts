import { Conflict, NotFound, ValidationFailed } from '@keyward/core';
import {
  assertVersion,
  decideCreate,
  decideDelete,
  decideDisable,
  decideEnable,
  decideGrantScopes,
  decideRevokeScope,
  decideUpdate,
  evolve,
  fold,
  type NewServiceAccount,
  type ServiceAccount,
  type ServiceAccountFact,
} from './service-account';
import type { ServiceAccountEvent } from './service-account.events';

// Given events / when command / then events (or error). Facts are folded with occurredAt one
// minute apart from T0, so every updatedAt and version below is predictable.

const T0 = Date.parse('2026-03-01T09:00:00.000Z');
const minute = 60_000;
const at = (i: number): Date => new Date(T0 + i * minute);

function command(overrides: Partial<NewServiceAccount> = {}): NewServiceAccount {
  return {
    id: 'sa_00000000000000000001',
    tenantId: 'acme',
    name: 'nightly-digest-summariser',
    environment: 'production',
    description: "Summarises yesterday's tickets",
    intendedScope: 'Reads tickets; drafts summaries',
    businessOwner: 'support-ops',
    technicalOwner: 'ai-platform',
    allowedScopes: ['tickets:read', 'summaries:draft'],
    boundaries: ['site:plant-7'],
    allowedCidrs: ['10.20.0.0/16'],
    abuseDetection: true,
    rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: false },
    secretDelivery: { url: 'https://vault-adapter.internal/keys' },
    ...overrides,
  };
}

function created(overrides: Partial<NewServiceAccount> = {}): ServiceAccountEvent {
  return { type: 'ServiceAccountCreated', data: command(overrides) };
}

const disabled: ServiceAccountEvent = { type: 'ServiceAccountDisabled', data: {} };
const enabled: ServiceAccountEvent = { type: 'ServiceAccountEnabled', data: {} };
const deleted: ServiceAccountEvent = { type: 'ServiceAccountDeleted', data: {} };
const granted = (...scopes: string[]): ServiceAccountEvent => ({ type: 'ScopesGranted', data: { scopes } });
const revoked = (scope: string): ServiceAccountEvent => ({ type: 'ScopeRevoked', data: { scope } });

function facts(events: ServiceAccountEvent[]): ServiceAccountFact[] {
  return events.map((event, i) => ({ ...event, occurredAt: at(i) }));
}

type Outcome = ServiceAccountEvent[] | Error;

function outcome(run: () => ServiceAccountEvent[]): Outcome {
  try {
    return run();
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
}

/** Folds the facts into state; `when` runs a decision against it and answers its events or error. */
function given(...history: ServiceAccountEvent[]) {
  const state = fold(facts(history));
  if (!state) throw new Error('given() needs a ServiceAccountCreated first');
  return {
    state,
    when: (decide: (state: ServiceAccount) => ServiceAccountEvent[]): Outcome => outcome(() => decide(state)),
    /** The state after the decision's events are folded on top of the history. */
    then: (decide: (state: ServiceAccount) => ServiceAccountEvent[]): ServiceAccount | null =>
      fold(facts([...history, ...decide(state)])),
  };
}

function expectValidation(result: Outcome): string[] {
  expect(result).toBeInstanceOf(ValidationFailed);
  return (result as ValidationFailed).errors.map((e) => e.field);
}

function expectConflict(result: Outcome, message?: RegExp): Conflict {
  expect(result).toBeInstanceOf(Conflict);
  if (message) expect((result as Conflict).message).toMatch(message);
  return result as Conflict;
}

describe('decideCreate', () => {
  it('answers one ServiceAccountCreated carrying the command', () => {
    expect(outcome(() => decideCreate(command()))).toEqual([
      {
        type: 'ServiceAccountCreated',
        data: { ...command(), allowedScopes: ['summaries:draft', 'tickets:read'] },
      },
    ]);
  });

  it('normalizes scopes, boundaries and CIDRs: sorted and without duplicates', () => {
    const result = outcome(() =>
      decideCreate(
        command({
          allowedScopes: ['tickets:read', 'a:*', 'tickets:read', 'summaries:draft', 'a:*'],
          boundaries: ['site:plant-9', 'site:plant-7/asset-group:pumps', 'site:plant-9'],
          allowedCidrs: ['192.168.0.0/16', '10.20.0.0/16', '2001:db8::/32', '10.20.0.0/16'],
        }),
      ),
    );
    expect(result).toHaveLength(1);
    const [event] = result as ServiceAccountEvent[];
    expect(event.type).toBe('ServiceAccountCreated');
    const data = (event as Extract<ServiceAccountEvent, { type: 'ServiceAccountCreated' }>).data;
    expect(data.allowedScopes).toEqual(['a:*', 'summaries:draft', 'tickets:read']);
    expect(data.boundaries).toEqual(['site:plant-7/asset-group:pumps', 'site:plant-9']);
    expect(data.allowedCidrs).toEqual(['10.20.0.0/16', '192.168.0.0/16', '2001:db8::/32']);
  });

  it('accepts empty lists and no rotation policy, description or secret delivery', () => {
    const result = outcome(() =>
      decideCreate(
        command({
          allowedScopes: [],
          boundaries: [],
          allowedCidrs: [],
          description: null,
          intendedScope: null,
          rotationPolicy: null,
          secretDelivery: null,
        }),
      ),
    );
    expect(result).toEqual([
      {
        type: 'ServiceAccountCreated',
        data: command({
          allowedScopes: [],
          boundaries: [],
          allowedCidrs: [],
          description: null,
          intendedScope: null,
          rotationPolicy: null,
          secretDelivery: null,
        }),
      },
    ]);
  });

  it.each([
    ['name', { name: 'ab' }],
    ['name', { name: 'a'.repeat(65) }],
    ['name', { name: 'Nightly-Digest' }],
    ['name', { name: 'nightly_digest' }],
    ['name', { name: 'nightly digest' }],
    ['environment', { environment: 'prod' as never }],
    ['businessOwner', { businessOwner: '' }],
    ['businessOwner', { businessOwner: '   ' }],
    ['businessOwner', { businessOwner: 'x'.repeat(129) }],
    ['technicalOwner', { technicalOwner: '' }],
    ['technicalOwner', { technicalOwner: 'y'.repeat(129) }],
    ['allowedScopes[0]', { allowedScopes: ['tickets'] }],
    ['allowedScopes[1]', { allowedScopes: ['tickets:read', 'Tickets:Read'] }],
    ['allowedScopes[0]', { allowedScopes: ['*:read'] }],
    ['allowedScopes', { allowedScopes: Array.from({ length: 101 }, (_, i) => `p${i}:read`) }],
    ['boundaries[0]', { boundaries: ['plant-7'] }],
    ['boundaries[1]', { boundaries: ['site:plant-7', 'site:plant-7/'] }],
    ['boundaries', { boundaries: Array.from({ length: 51 }, (_, i) => `site:p${i}`) }],
    ['allowedCidrs[0]', { allowedCidrs: ['10.20.0.0'] }],
    ['allowedCidrs[0]', { allowedCidrs: ['10.20.0.0/33'] }],
    ['allowedCidrs[1]', { allowedCidrs: ['10.20.0.0/16', 'everywhere'] }],
    ['allowedCidrs', { allowedCidrs: Array.from({ length: 51 }, (_, i) => `10.${i}.0.0/16`) }],
    [
      'rotationPolicy.maxKeyAgeDays',
      { rotationPolicy: { maxKeyAgeDays: 3651, notifyBeforeDays: 1, autoRotate: false } },
    ],
    [
      'rotationPolicy.maxKeyAgeDays',
      { rotationPolicy: { maxKeyAgeDays: 1.5, notifyBeforeDays: 0, autoRotate: false } },
    ],
    [
      'rotationPolicy.notifyBeforeDays',
      { rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: -1, autoRotate: false } },
    ],
    [
      'rotationPolicy.notifyBeforeDays',
      { rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 90, autoRotate: true } },
    ],
    [
      'rotationPolicy.notifyBeforeDays',
      { rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 2.5, autoRotate: true } },
    ],
  ] as [string, Partial<NewServiceAccount>][])(
    'rejects %s in %j with ValidationFailed naming it',
    (field, overrides) => {
      expect(expectValidation(outcome(() => decideCreate(command(overrides))))).toEqual([field]);
    },
  );

  it('rejects a maximum key age of 0, under which no notice period fits either', () => {
    const rotationPolicy = { maxKeyAgeDays: 0, notifyBeforeDays: 0, autoRotate: false };
    expect(expectValidation(outcome(() => decideCreate(command({ rotationPolicy }))))).toEqual([
      'rotationPolicy.maxKeyAgeDays',
      'rotationPolicy.notifyBeforeDays',
    ]);
  });

  it('accepts the limits themselves', () => {
    const result = outcome(() =>
      decideCreate(
        command({
          name: 'a'.repeat(64),
          businessOwner: 'x'.repeat(128),
          allowedScopes: Array.from({ length: 100 }, (_, i) => `p${i}:read`),
          boundaries: Array.from({ length: 50 }, (_, i) => `site:p${i}`),
          allowedCidrs: Array.from({ length: 50 }, (_, i) => `10.${i}.0.0/16`),
          rotationPolicy: { maxKeyAgeDays: 3650, notifyBeforeDays: 3649, autoRotate: true },
        }),
      ),
    );
    expect(result).toHaveLength(1);
  });

  it('lists every invalid field at once and records nothing', () => {
    const result = outcome(() =>
      decideCreate(
        command({
          name: 'X',
          businessOwner: '',
          technicalOwner: ' ',
          allowedScopes: ['ok:read', 'bad'],
          boundaries: ['nope'],
          allowedCidrs: ['300.0.0.0/8'],
          rotationPolicy: { maxKeyAgeDays: 10, notifyBeforeDays: 10, autoRotate: false },
        }),
      ),
    );
    expect(expectValidation(result)).toEqual([
      'name',
      'businessOwner',
      'technicalOwner',
      'allowedScopes[1]',
      'boundaries[0]',
      'allowedCidrs[0]',
      'rotationPolicy.notifyBeforeDays',
    ]);
  });
});

describe('decideUpdate', () => {
  it('records only the fields whose value changes', () => {
    const result = given(created()).when((s) =>
      decideUpdate(s, {
        name: 'nightly-digest-summariser',
        description: 'Summarises tickets',
        abuseDetection: true,
      }),
    );
    expect(result).toEqual([
      { type: 'ServiceAccountUpdated', data: { changes: { description: 'Summarises tickets' } } },
    ]);
  });

  it('answers no event when nothing changes', () => {
    const account = given(created());
    expect(account.when((s) => decideUpdate(s, {}))).toEqual([]);
    expect(account.when((s) => decideUpdate(s, { description: undefined, name: undefined }))).toEqual([]);
    expect(
      account.when((s) =>
        decideUpdate(s, {
          name: 'nightly-digest-summariser',
          businessOwner: 'support-ops',
          boundaries: ['site:plant-7'],
          allowedCidrs: ['10.20.0.0/16'],
          rotationPolicy: { maxKeyAgeDays: 90, notifyBeforeDays: 14, autoRotate: false },
          secretDelivery: { url: 'https://vault-adapter.internal/keys' },
        }),
      ),
    ).toEqual([]);
  });

  it('treats a change back to the value the account already holds as no change', () => {
    const account = given(created(), {
      type: 'ServiceAccountUpdated',
      data: { changes: { name: 'renamed', boundaries: ['a:1', 'b:2'] } },
    });
    expect(account.state.name).toBe('renamed');
    expect(account.when((s) => decideUpdate(s, { name: 'renamed' }))).toEqual([]);
    // The same set in another order, with a duplicate, is the same set.
    expect(account.when((s) => decideUpdate(s, { boundaries: ['b:2', 'a:1', 'b:2'] }))).toEqual([]);
    // The same policy with its keys in another order is the same policy.
    expect(
      account.when((s) =>
        decideUpdate(s, { rotationPolicy: { autoRotate: false, notifyBeforeDays: 14, maxKeyAgeDays: 90 } }),
      ),
    ).toEqual([]);
    // Back to the value before the rename is a change from where it stands now.
    expect(account.when((s) => decideUpdate(s, { name: 'nightly-digest-summariser' }))).toEqual([
      { type: 'ServiceAccountUpdated', data: { changes: { name: 'nightly-digest-summariser' } } },
    ]);
  });

  it('normalizes boundaries and CIDRs in the recorded change', () => {
    const result = given(created()).when((s) =>
      decideUpdate(s, {
        boundaries: ['z:1', 'a:1', 'z:1'],
        allowedCidrs: ['10.0.0.0/8', '10.0.0.0/8', '::/0'],
      }),
    );
    expect(result).toEqual([
      {
        type: 'ServiceAccountUpdated',
        data: { changes: { boundaries: ['a:1', 'z:1'], allowedCidrs: ['10.0.0.0/8', '::/0'] } },
      },
    ]);
  });

  it('clears a field with null, and clearing what is already null is no change', () => {
    const account = given(created());
    const changes = { description: null, intendedScope: null, rotationPolicy: null, secretDelivery: null };
    expect(account.when((s) => decideUpdate(s, changes))).toEqual([
      { type: 'ServiceAccountUpdated', data: { changes } },
    ]);
    const after = account.then((s) => decideUpdate(s, changes));
    expect(after).toMatchObject(changes);
    expect(after?.name).toBe('nightly-digest-summariser');

    const cleared = given(created(changes));
    expect(cleared.when((s) => decideUpdate(s, changes))).toEqual([]);
  });

  it('may change a disabled account', () => {
    expect(given(created(), disabled).when((s) => decideUpdate(s, { abuseDetection: false }))).toEqual([
      { type: 'ServiceAccountUpdated', data: { changes: { abuseDetection: false } } },
    ]);
  });

  it.each([
    ['name', { name: 'No Caps' }],
    ['businessOwner', { businessOwner: '' }],
    ['technicalOwner', { technicalOwner: 't'.repeat(129) }],
    ['boundaries[0]', { boundaries: ['site:plant-7/'] }],
    ['boundaries', { boundaries: Array.from({ length: 51 }, (_, i) => `site:p${i}`) }],
    ['allowedCidrs[0]', { allowedCidrs: ['10.0.0.0/99'] }],
    [
      'rotationPolicy.maxKeyAgeDays',
      { rotationPolicy: { maxKeyAgeDays: 3651, notifyBeforeDays: 0, autoRotate: false } },
    ],
    [
      'rotationPolicy.notifyBeforeDays',
      { rotationPolicy: { maxKeyAgeDays: 5, notifyBeforeDays: 6, autoRotate: false } },
    ],
  ] as [string, Parameters<typeof decideUpdate>[1]][])(
    'rejects %s in %j with ValidationFailed',
    (field, changes) => {
      expect(expectValidation(given(created()).when((s) => decideUpdate(s, changes)))).toEqual([field]);
    },
  );
});

describe('status transitions', () => {
  it('disables an active account and enables it again', () => {
    expect(given(created()).when(decideDisable)).toEqual([{ type: 'ServiceAccountDisabled', data: {} }]);
    expect(given(created(), disabled).when(decideEnable)).toEqual([
      { type: 'ServiceAccountEnabled', data: {} },
    ]);
    expect(given(created(), disabled).then(decideEnable)?.status).toBe('active');
  });

  it('deletes an active or a disabled account', () => {
    expect(given(created()).when(decideDelete)).toEqual([{ type: 'ServiceAccountDeleted', data: {} }]);
    expect(given(created(), disabled).when(decideDelete)).toEqual([
      { type: 'ServiceAccountDeleted', data: {} },
    ]);
    expect(given(created(), disabled).then(decideDelete)?.status).toBe('deleted');
  });

  it('refuses to enable an active account', () => {
    expectConflict(given(created()).when(decideEnable), /already active/);
    expectConflict(given(created(), disabled, enabled).when(decideEnable), /already active/);
  });

  it('refuses to disable a disabled account', () => {
    expectConflict(given(created(), disabled).when(decideDisable), /already disabled/);
  });

  const onDeleted: [string, (s: ServiceAccount) => ServiceAccountEvent[]][] = [
    ['disable', decideDisable],
    ['enable', decideEnable],
    ['delete', decideDelete],
    ['update', (s) => decideUpdate(s, { description: 'new' })],
    ['update to nothing new', (s) => decideUpdate(s, {})],
    ['grant', (s) => decideGrantScopes(s, ['new:scope'])],
    ['revoke', (s) => decideRevokeScope(s, 'tickets:read')],
  ];

  it.each(onDeleted)('refuses to %s a deleted account with Conflict', (_, decide) => {
    expectConflict(given(created(), deleted).when(decide), /is deleted/);
    expectConflict(given(created(), disabled, deleted).when(decide), /is deleted/);
  });
});

describe('decideGrantScopes', () => {
  const holding = (...scopes: string[]) => given(created({ allowedScopes: scopes }));

  it('grants only the scopes not held yet, sorted and de-duplicated', () => {
    const result = holding('a:read', 'c:write').when((s) =>
      decideGrantScopes(s, ['z:run', 'b:read', 'a:read', 'b:read']),
    );
    expect(result).toEqual([{ type: 'ScopesGranted', data: { scopes: ['b:read', 'z:run'] } }]);
    expect(
      holding('a:read', 'c:write').then((s) => decideGrantScopes(s, ['z:run', 'b:read', 'a:read']))
        ?.allowedScopes,
    ).toEqual(['a:read', 'b:read', 'c:write', 'z:run']);
  });

  it('answers no event when every scope is held already', () => {
    expect(
      holding('a:read', 'c:write').when((s) => decideGrantScopes(s, ['c:write', 'a:read', 'a:read'])),
    ).toEqual([]);
  });

  it('grants to a disabled account', () => {
    expect(
      given(created({ allowedScopes: [] }), disabled).when((s) => decideGrantScopes(s, ['x:y'])),
    ).toEqual([{ type: 'ScopesGranted', data: { scopes: ['x:y'] } }]);
  });

  it('rejects an empty grant and malformed scopes', () => {
    expect(expectValidation(holding().when((s) => decideGrantScopes(s, [])))).toEqual(['scopes']);
    expect(expectValidation(holding().when((s) => decideGrantScopes(s, ['ok:read', 'not a scope'])))).toEqual(
      ['scopes[1]'],
    );
  });

  describe('holds at most 100 scopes', () => {
    const ninetyNine = Array.from({ length: 99 }, (_, i) => `p${String(i).padStart(2, '0')}:read`);

    it('grants up to the hundredth', () => {
      expect(holding(...ninetyNine).when((s) => decideGrantScopes(s, ['zz:last']))).toEqual([
        { type: 'ScopesGranted', data: { scopes: ['zz:last'] } },
      ]);
    });

    it('refuses one past it', () => {
      const result = holding(...ninetyNine).when((s) => decideGrantScopes(s, ['zz:last', 'zz:one-too-many']));
      expect(expectValidation(result)).toEqual(['scopes']);
      expect((result as ValidationFailed).errors[0].message).toMatch(/at most 100/);
    });

    it('counts only the new scopes against the limit', () => {
      const hundred = [...ninetyNine, 'zz:last'];
      expect(holding(...hundred).when((s) => decideGrantScopes(s, ['zz:last', 'p00:read']))).toEqual([]);
      expect(expectValidation(holding(...hundred).when((s) => decideGrantScopes(s, ['zz:new'])))).toEqual([
        'scopes',
      ]);
    });

    it('refuses a request naming more than 100 scopes', () => {
      const many = Array.from({ length: 101 }, (_, i) => `q${i}:read`);
      expect(expectValidation(holding().when((s) => decideGrantScopes(s, many)))).toContain('scopes');
    });
  });
});

describe('decideRevokeScope', () => {
  it('revokes a held scope', () => {
    const account = given(created({ allowedScopes: ['a:*', 'a:read', 'b:read'] }));
    expect(account.when((s) => decideRevokeScope(s, 'a:read'))).toEqual([
      { type: 'ScopeRevoked', data: { scope: 'a:read' } },
    ]);
    expect(account.then((s) => decideRevokeScope(s, 'a:read'))?.allowedScopes).toEqual(['a:*', 'b:read']);
  });

  it('answers NotFound for a scope the account does not hold', () => {
    const account = given(created({ allowedScopes: ['a:*', 'b:read'] }));
    const result = account.when((s) => decideRevokeScope(s, 'a:read'));
    expect(result).toBeInstanceOf(NotFound);
    expect((result as NotFound).message).toContain('a:read');
    expect(
      given(created(), revoked('tickets:read')).when((s) => decideRevokeScope(s, 'tickets:read')),
    ).toBeInstanceOf(NotFound);
  });
});

describe('assertVersion', () => {
  const state = given(created(), disabled, enabled).state;

  it('passes when no version is expected or the expected one is current', () => {
    expect(state.version).toBe(3);
    expect(() => assertVersion(state, undefined)).not.toThrow();
    expect(() => assertVersion(state, 3)).not.toThrow();
  });

  it.each([0, 2, 4])('throws Conflict with both versions when %i is expected', (expectedVersion) => {
    let thrown: unknown;
    try {
      assertVersion(state, expectedVersion);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Conflict);
    expect((thrown as Conflict).versions).toEqual({ expectedVersion, actualVersion: 3 });
  });
});

describe('evolve', () => {
  it('starts an account from ServiceAccountCreated', () => {
    const state = evolve(null, { ...created(), occurredAt: at(0) });
    expect(state).toEqual({ ...command(), status: 'active', createdAt: at(0), updatedAt: at(0), version: 1 });
  });

  it('counts one version per event and stamps updatedAt with the event time', () => {
    const history: ServiceAccountEvent[] = [
      created(),
      disabled,
      enabled,
      granted('x:y'),
      revoked('x:y'),
      { type: 'ServiceAccountUpdated', data: { changes: { abuseDetection: false } } },
      deleted,
    ];
    const states = facts(history).reduce<ServiceAccount[]>(
      (acc, fact) => [...acc, evolve(acc[acc.length - 1] ?? null, fact)],
      [],
    );
    expect(states.map((s) => s.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(states.map((s) => s.updatedAt)).toEqual(history.map((_, i) => at(i)));
    expect(states.every((s) => s.createdAt.getTime() === at(0).getTime())).toBe(true);
    expect(states.map((s) => s.status)).toEqual([
      'active',
      'disabled',
      'active',
      'active',
      'active',
      'active',
      'deleted',
    ]);
  });

  it('does not change the state it is given', () => {
    const before = given(created()).state;
    const copy = structuredClone(before);
    evolve(before, { ...disabled, occurredAt: at(5) });
    evolve(before, { ...granted('new:scope'), occurredAt: at(5) });
    expect(before).toEqual(copy);
  });

  it('applies an update to the changed fields only', () => {
    const state = fold(
      facts([
        created(),
        { type: 'ServiceAccountUpdated', data: { changes: { description: 'new', rotationPolicy: null } } },
      ]),
    );
    expect(state).toEqual({
      ...command(),
      description: 'new',
      rotationPolicy: null,
      status: 'active',
      createdAt: at(0),
      updatedAt: at(1),
      version: 2,
    });
  });

  it('widens the ceiling with ScopesGranted, sorted and without duplicates', () => {
    const state = fold(facts([created({ allowedScopes: ['m:read'] }), granted('z:run', 'a:read', 'm:read')]));
    expect(state?.allowedScopes).toEqual(['a:read', 'm:read', 'z:run']);
  });

  it('narrows it by exactly the scope ScopeRevoked names', () => {
    const state = fold(facts([created({ allowedScopes: ['a:*', 'a:read', 'b:read'] }), revoked('a:*')]));
    expect(state?.allowedScopes).toEqual(['a:read', 'b:read']);
  });

  it.each<ServiceAccountEvent>([
    disabled,
    enabled,
    deleted,
    granted('a:b'),
    revoked('a:b'),
    { type: 'ServiceAccountUpdated', data: { changes: { name: 'x-y-z' } } },
  ])('throws on $type before the account exists', (event) => {
    expect(() => evolve(null, { ...event, occurredAt: at(0) })).toThrow(
      `${event.type} before ServiceAccountCreated`,
    );
  });

  it('folds no events to no account', () => {
    expect(fold([])).toBeNull();
  });
});

describe('decideUpdate refuses null for fields that have no "none"', () => {
  it.each(['name', 'businessOwner', 'technicalOwner', 'boundaries', 'allowedCidrs', 'abuseDetection'])(
    '%s: null',
    (field) => {
      const state = fold([
        {
          type: 'ServiceAccountCreated',
          occurredAt: new Date('2026-01-01T00:00:00.000Z'),
          data: {
            id: 'sa_AAAAAAAAAAAAAAAAAAAA',
            tenantId: 't',
            name: 'abc',
            environment: 'staging',
            description: null,
            intendedScope: null,
            businessOwner: 'b',
            technicalOwner: 't',
            allowedScopes: [],
            boundaries: [],
            allowedCidrs: [],
            abuseDetection: true,
            rotationPolicy: null,
            secretDelivery: null,
          },
        },
      ])!;
      expect(() => decideUpdate(state, { [field]: null } as never)).toThrow(ValidationFailed);
    },
  );
});
