export * from './roles';
export * from './caller';
export * from './operator-token';
export * from './command-context';
export * from './failure-throttle';
