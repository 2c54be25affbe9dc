export * from './queues';
export * from './schedules';
