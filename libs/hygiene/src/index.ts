export * from './hygiene-rules';
export * from './hygiene-sweep';
export * from './scheduled-rotation';
