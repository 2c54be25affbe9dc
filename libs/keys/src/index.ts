export * from './key-secret';
export * from './key.events';
export * from './key';
export * from './matching';
export * from './policy';
export * from './verify';
