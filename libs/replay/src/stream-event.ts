import type { RecordedEvent } from '@keyward/event-store';

/** What replay needs of a stored event: enough to fold it into its stream's state, and to name it. */
export type StreamEvent = Pick<
  RecordedEvent,
  'position' | 'streamId' | 'streamType' | 'streamVersion' | 'type' | 'data' | 'occurredAt'
>;
