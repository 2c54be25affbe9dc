export * from './usage';
export * from './usage-counters';
export * from './usage-buffer';
export * from './usage-flush';
export * from './usage.reader';
