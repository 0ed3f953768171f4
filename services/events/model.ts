/** The spec's enums and the shapes of cross-integration events as clients see them. */

export const EVENT_PRIORITIES = ['low', 'medium', 'high', 'critical'] as const;
export type EventPriority = (typeof EVENT_PRIORITIES)[number];
/** pending: deliveries outstanding; processed: all delivered; failed: some dead-lettered. */
export const EVENT_STATUSES = ['pending', 'processed', 'failed'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];
/** failed: the last attempt failed and another is scheduled; dead: attempts exhausted or not retryable. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed', 'dead'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export const priorityRank = (p: EventPriority): number => EVENT_PRIORITIES.indexOf(p);

export interface Delivery {
  targetIntegrationId: string;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  lastStatusCode: number | null;
  channels: string[];
  webhookId: string;
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  deliveredAt: string | null;
  deadAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface CrossIntegrationEvent {
  id: string;
  eventName: string;
  sourceIntegrationId: string;
  targetIntegrationIds: string[];
  payload: unknown;
  eventCategory: string;
  priority: EventPriority;
  status: EventStatus;
  processedAt: string | null;
  errorMessage: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
  deliveries?: Delivery[];
  /** Targets whose registered endpoint filters exclude this event: nothing is delivered to them. */
  filteredTargetIds?: string[];
}

export interface Endpoint {
  integrationId: string;
  url: string;
  eventNames: string[] | null;
  eventCategories: string[] | null;
  createdAt: string;
  updatedAt: string;
}

/** The webhook-id of a delivery: stable across retries; a republish of a delivered row bumps it. */
export const webhookIdOf = (eventId: string, target: string, generation: number): string =>
  `msg_${eventId}_${target}${generation > 0 ? `_r${generation}` : ''}`;

/** True when an endpoint's filters let the event through. */
export function endpointWants(ep: { eventNames: string[] | null; eventCategories: string[] | null }, eventName: string, eventCategory: string): boolean {
  if (ep.eventNames?.length && !ep.eventNames.includes(eventName)) return false;
  if (ep.eventCategories?.length && !ep.eventCategories.includes(eventCategory)) return false;
  return true;
}
