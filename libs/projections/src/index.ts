export * from './inline-projections';
export * from './rebuild';
