export * from './event-view';
export * from './cursors';
export * from './history.reader';
export * from './event-feed';
export * from './integrity';
