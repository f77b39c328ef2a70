/** Webhook notifications (Distribution's `notifications` section) with a durable queue: see notifier.ts. */
export { Notifier, type EventSink, type NotificationSettings, type NotificationStats, type NotifierOptions } from './notifier.js';
export type { EndpointSettings } from './endpoint.js';
export type { EndpointStats, NotificationMetricsSink } from './delivery.js';
export {
  BLOB_MEDIA_TYPE,
  EVENTS_MEDIA_TYPE,
  actorRecord,
  manifestReferences,
  newEvent,
  requestRecord,
  sourceAddress,
  type Event,
  type EventAction,
  type EventOrigin,
  type EventTarget,
} from './event.js';
export { queueInstanceId } from './lease.js';
