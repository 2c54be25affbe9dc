import { Conflict } from '@keyward/core';

/** The stream was not at the version the appender expected; nothing was appended. */
export class StreamVersionConflict extends Conflict {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(`stream ${streamId} is at version ${actualVersion}, not ${expectedVersion}`, {
      expectedVersion,
      actualVersion,
    });
  }
}
