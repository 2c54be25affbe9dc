import { ValidationFailed } from '@keyward/core';
import { decodeFeedCursor, decodeHistoryCursor, encodeFeedCursor, encodeHistoryCursor } from './cursors';

const raw = (parts: unknown) => Buffer.from(JSON.stringify(parts)).toString('base64url');

function expectRefused(decode: () => unknown) {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationFailed);
    expect((error as ValidationFailed).errors).toEqual([
      { field: 'cursor', message: 'is not a cursor this API returned' },
    ]);
    return;
  }
  throw new Error('the cursor was accepted');
}

describe('history and feed cursors', () => {
  it('come back as they went out', () => {
    expect(decodeHistoryCursor(encodeHistoryCursor(17))).toBe(17);
    const checkpoint = { transactionId: 2n ** 64n - 1n, position: 2n ** 63n - 1n };
    expect(decodeFeedCursor(encodeFeedCursor(checkpoint))).toEqual(checkpoint);
  });

  it("refuse each other's cursors", () => {
    expectRefused(() => decodeFeedCursor(encodeHistoryCursor(3)));
    expectRefused(() => decodeHistoryCursor(encodeFeedCursor({ transactionId: 1n, position: 2n })));
  });

  it('refuse anything else before it can reach SQL', () => {
    for (const text of [
      '',
      'abc',
      '%%%',
      raw({}),
      raw(['history']),
      raw(['history', 3]),
      raw(['history', '-1']),
    ]) {
      expectRefused(() => decodeHistoryCursor(text));
    }
    for (const parts of [
      ['feed', '1'],
      ['feed', '1', '2', '3'],
      ['feed', '01', '2'],
      ['feed', '1', '1e3'],
      ['feed', '1', '9223372036854775808'],
      ['feed', '18446744073709551616', '1'],
      ['feed', '1', '2\u0000'],
    ]) {
      expectRefused(() => decodeFeedCursor(raw(parts)));
    }
    expectRefused(() => decodeHistoryCursor(raw(['history', String(2 ** 53)])));
  });
});
