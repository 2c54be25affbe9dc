export * from './redis';
export * from './fixed-window';
