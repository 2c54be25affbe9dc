import { systemClock } from '@keyward/core';
import { createDb } from '@keyward/db';
import { EventStore, type EventMetadata } from '@keyward/event-store';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database';
import { checkIntegrity } from './integrity';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

const meta: EventMetadata = {
  actor: { type: 'system', id: 'integrity-test', name: 'integrity test' },
  reason: null,
  correlationId: 'c',
};

it('a tenant with no events has an intact, empty chain', async () => {
  await expect(checkIntegrity(t.db, 'nobody')).resolves.toEqual({ ok: true, checked: 0, brokenAt: null });
});

it('answers ok for every check made while appends to the same tenant commit', async () => {
  // The head row and the events are read in one snapshot; read apart, an append committing in
  // between would show a head that does not match the events (a false alarm).
  const wide = createDb(t.url, { max: 12, applicationName: 'keyward-test-integrity' });
  try {
    const store = new EventStore(wide, [], systemClock);
    let appending = true;
    const writers = Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        for (let n = 0; n < 25; n++) {
          await store.append(
            [
              {
                tenantId: 'busy',
                streamId: `busy-${w}-${n}`,
                streamType: 'thing',
                expectedVersion: 0,
                events: [
                  { type: 'A', data: { w, n } },
                  { type: 'B', data: { w, n } },
                ],
              },
            ],
            meta,
          );
        }
      }),
    ).finally(() => (appending = false));
    const verdicts: { ok: boolean; checked: number }[] = [];
    while (appending) verdicts.push(await checkIntegrity(wide, 'busy'));
    await writers;
    verdicts.push(await checkIntegrity(wide, 'busy'));

    expect(verdicts.length).toBeGreaterThan(3);
    expect(verdicts.filter((v) => !v.ok)).toEqual([]);
    expect(verdicts[verdicts.length - 1]).toEqual({ ok: true, checked: 300, brokenAt: null });
    const counts = verdicts.map((v) => v.checked);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
  } finally {
    await wide.destroy();
  }
});
