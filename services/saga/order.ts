import { z } from 'zod';

/** The spec's start request (POST /workflows/order/start); OrderCreatedEvent is this plus `eventId`. */
export const OrderItem = z.object({
  productId: z.string().min(1).max(200),
  quantity: z.number().int().min(1),
  price: z.number().min(0),
});

export const OrderRequestShape = {
  orderId: z.string().min(1).max(200),
  customerId: z.string().min(1).max(200),
  items: z.array(OrderItem).min(1).max(1000),
  paymentMethod: z.object({ type: z.string().min(1).max(100), token: z.string().min(1).max(500) }),
  shippingAddress: z.object({
    street: z.string().min(1).max(500),
    city: z.string().min(1).max(200),
    state: z.string().max(200).optional(),
    zipCode: z.string().min(1).max(50),
    country: z.string().min(2).max(100),
  }),
};

export const OrderRequest = z.object(OrderRequestShape);
export type OrderRequest = z.infer<typeof OrderRequest>;

/** The event a service publishes on `svc.events.OrderCreatedEvent`. */
export const OrderCreatedEvent = z.object({ ...OrderRequestShape, eventId: z.string().min(1).max(200) });

/** The saga's data for an order: the request plus its total, which the payment step charges. */
export function orderData(o: OrderRequest): Record<string, unknown> {
  const cents = o.items.reduce((sum, i) => sum + Math.round(i.price * 100) * i.quantity, 0);
  return {
    orderId: o.orderId,
    customerId: o.customerId,
    items: o.items,
    paymentMethod: o.paymentMethod,
    shippingAddress: o.shippingAddress,
    amount: cents / 100,
  };
}
