export * from './signal.events';
export * from './signal';
export * from './raise-signals';
export * from './signals.projection';
export * from './signal.reader';
export * from './signal.handlers';
export * from './exposure-signals';
export * from './signals.module';
