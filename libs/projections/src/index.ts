export * from './inline-projections';
export * from './rebuild';
export * from './find';
export * from './status';
