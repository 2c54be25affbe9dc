export * from './stream-event';
export * from './as-of';
export * from './account-state';
export * from './access';
export * from './replay.reader';
