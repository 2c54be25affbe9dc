export * from './errors';
export * from './clock';
export * from './ids';
export * from './canonical-json';
export * from './pg-errors';
export * from './cursor';
export * from './text';
export * from './invalidated-cache';
