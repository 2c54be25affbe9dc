export * from './schema';
export * from './database';
export * from './migrate';
