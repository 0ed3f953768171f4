/**
 * Saga types as data. Each step names the command Concord sends (`svc.<service>.<command>`),
 * the reply events that settle it, its timeout and retry policy, the fields it copies into the
 * command, the result fields a service returns, and the compensation that undoes it. A new saga
 * type is a new entry here; `machines/saga/` runs any of them and the simulator answers any of
 * them.
 *
 * Durations are ISO-8601 (`PT1M`). The runtime may override timeouts and retries from its
 * configuration when a saga starts; the values then travel in the saga's own context, so a
 * running saga keeps the policy it started with.
 */

export const SAGA_TYPES = ['ORDER_FULFILLMENT', 'RETURN_PROCESSING', 'INVENTORY_REPLENISHMENT'] as const;
export type SagaType = (typeof SAGA_TYPES)[number];

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  maxAttempts: number;
  initialInterval: string;
  multiplier: number;
  maxInterval: string;
}

export interface CompensationDefinition {
  /** What the status and events call it, e.g. RELEASE_INVENTORY. */
  name: string;
  service: string;
  command: string;
  /** The event that confirms it (it is idempotent at the service: undoing nothing succeeds). */
  success: string;
  timeout: string;
  /** Retries after the first attempt. */
  maxRetries: number;
}

export interface StepDefinition {
  name: string;
  service: string;
  command: string;
  success: string;
  /** A business failure: not retried; the saga compensates. */
  failure?: string;
  timeout: string;
  retry: RetryPolicy;
  /** Fields of the saga's data copied into the command. */
  input: string[];
  /** Result fields of earlier steps copied into the command (e.g. `reservationId`). */
  uses?: string[];
  /** Fields of the success event kept as the step's result. */
  result: string[];
  compensation?: CompensationDefinition;
}

export interface SagaDefinition {
  type: SagaType;
  /** The saga's data field that correlates it (WorkflowStartedEvent.correlationId). */
  correlationField: string;
  /** Data fields shown as `metadata` in status and events. */
  metadataFields: string[];
  timeout: string;
  steps: StepDefinition[];
}

/** The spec's retry policy: 3 attempts, backoff x2 from 1 s up to 30 s. */
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, initialInterval: 'PT1S', multiplier: 2, maxInterval: 'PT30S' };

const releaseInventory: CompensationDefinition = { name: 'RELEASE_INVENTORY', service: 'inventory', command: 'release', success: 'InventoryReleasedEvent', timeout: 'PT5M', maxRetries: 5 };
const refundPayment: CompensationDefinition = { name: 'REFUND_PAYMENT', service: 'payment', command: 'refund', success: 'PaymentRefundedEvent', timeout: 'PT5M', maxRetries: 5 };
const cancelDelivery: CompensationDefinition = { name: 'CANCEL_DELIVERY', service: 'delivery', command: 'cancel', success: 'DeliveryCancelledEvent', timeout: 'PT5M', maxRetries: 5 };

const notification = (input: string[]): StepDefinition => ({
  name: 'NOTIFICATION_SENDING',
  service: 'notification',
  command: 'send',
  success: 'NotificationSentEvent',
  timeout: 'PT1M',
  retry: DEFAULT_RETRY,
  input,
  result: ['notificationId'],
});

export const ORDER_FULFILLMENT: SagaDefinition = {
  type: 'ORDER_FULFILLMENT',
  correlationField: 'orderId',
  metadataFields: ['orderId', 'customerId'],
  timeout: 'PT10M',
  steps: [
    {
      name: 'INVENTORY_RESERVATION',
      service: 'inventory',
      command: 'reserve',
      success: 'InventoryReservedEvent',
      failure: 'InventoryReservationFailedEvent',
      timeout: 'PT1M',
      retry: DEFAULT_RETRY,
      input: ['items'],
      result: ['reservationId'],
      compensation: releaseInventory,
    },
    {
      name: 'PAYMENT_PROCESSING',
      service: 'payment',
      command: 'process',
      success: 'PaymentProcessedEvent',
      failure: 'PaymentFailedEvent',
      timeout: 'PT2M',
      retry: DEFAULT_RETRY,
      input: ['customerId', 'paymentMethod', 'amount', 'currency'],
      uses: ['reservationId'],
      result: ['paymentId'],
      compensation: refundPayment,
    },
    {
      name: 'DELIVERY_SCHEDULING',
      service: 'delivery',
      command: 'schedule',
      success: 'DeliveryScheduledEvent',
      failure: 'DeliveryFailedEvent',
      timeout: 'PT2M',
      retry: DEFAULT_RETRY,
      input: ['items', 'shippingAddress'],
      uses: ['reservationId'],
      result: ['deliveryId', 'estimatedDelivery'],
      compensation: cancelDelivery,
    },
    notification(['customerId']),
  ],
};

/** A customer return: pick the parcel up, put the goods back on the shelf, refund, tell them. */
export const RETURN_PROCESSING: SagaDefinition = {
  type: 'RETURN_PROCESSING',
  correlationField: 'returnId',
  metadataFields: ['returnId', 'orderId', 'customerId'],
  timeout: 'PT10M',
  steps: [
    {
      name: 'RETURN_PICKUP',
      service: 'delivery',
      command: 'pickup',
      success: 'PickupScheduledEvent',
      failure: 'PickupFailedEvent',
      timeout: 'PT2M',
      retry: DEFAULT_RETRY,
      input: ['items', 'pickupAddress'],
      result: ['pickupId'],
      compensation: { name: 'CANCEL_PICKUP', service: 'delivery', command: 'cancelPickup', success: 'PickupCancelledEvent', timeout: 'PT5M', maxRetries: 5 },
    },
    {
      name: 'INVENTORY_RESTOCK',
      service: 'inventory',
      command: 'restock',
      success: 'InventoryRestockedEvent',
      failure: 'InventoryRestockFailedEvent',
      timeout: 'PT1M',
      retry: DEFAULT_RETRY,
      input: ['items'],
      result: ['restockId'],
      compensation: { name: 'REVERSE_RESTOCK', service: 'inventory', command: 'deduct', success: 'InventoryDeductedEvent', timeout: 'PT5M', maxRetries: 5 },
    },
    {
      name: 'REFUND_ISSUING',
      service: 'payment',
      command: 'refund',
      success: 'PaymentRefundedEvent',
      failure: 'PaymentRefundFailedEvent',
      timeout: 'PT2M',
      retry: DEFAULT_RETRY,
      input: ['customerId', 'paymentId', 'amount', 'currency'],
      result: ['refundId'],
    },
    notification(['customerId']),
  ],
};

/** Buying stock from a supplier: pay, book the inbound delivery, receive the goods, tell the buyer. */
export const INVENTORY_REPLENISHMENT: SagaDefinition = {
  type: 'INVENTORY_REPLENISHMENT',
  correlationField: 'replenishmentId',
  metadataFields: ['replenishmentId', 'supplierId'],
  timeout: 'PT10M',
  steps: [
    {
      name: 'SUPPLIER_PAYMENT',
      service: 'payment',
      command: 'process',
      success: 'PaymentProcessedEvent',
      failure: 'PaymentFailedEvent',
      timeout: 'PT2M',
      retry: DEFAULT_RETRY,
      input: ['supplierId', 'paymentMethod', 'amount', 'currency'],
      result: ['paymentId'],
      compensation: refundPayment,
    },
    {
      name: 'INBOUND_DELIVERY',
      service: 'delivery',
      command: 'schedule',
      success: 'DeliveryScheduledEvent',
      failure: 'DeliveryFailedEvent',
      timeout: 'PT2M',
      retry: DEFAULT_RETRY,
      input: ['items', 'supplierAddress', 'warehouseAddress'],
      result: ['deliveryId', 'estimatedDelivery'],
      compensation: cancelDelivery,
    },
    {
      name: 'STOCK_RECEIPT',
      service: 'inventory',
      command: 'restock',
      success: 'InventoryRestockedEvent',
      failure: 'InventoryRestockFailedEvent',
      timeout: 'PT1M',
      retry: DEFAULT_RETRY,
      input: ['items'],
      uses: ['deliveryId'],
      result: ['restockId'],
      compensation: { name: 'REVERSE_RESTOCK', service: 'inventory', command: 'deduct', success: 'InventoryDeductedEvent', timeout: 'PT5M', maxRetries: 5 },
    },
    notification(['supplierId']),
  ],
};

export const SAGA_DEFINITIONS: Record<SagaType, SagaDefinition> = { ORDER_FULFILLMENT, RETURN_PROCESSING, INVENTORY_REPLENISHMENT };
