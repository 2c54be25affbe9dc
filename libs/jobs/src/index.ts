export * from './queues';
export * from './queue-stats';
export * from './schedules';
