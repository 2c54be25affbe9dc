export * from './queues';
export * from './queue-stats';
export * from './schedules';
export * from './schedule-heartbeat';
export * from './schedule-keeper';
