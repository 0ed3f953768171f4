/**
 * Shopify webhooks in: the signature check (base64 HMAC-SHA256 over the raw body bytes, keyed
 * with the webhook secret, compared in constant time) and the parse (topic, shop, ids, time,
 * payload). Pure functions over `{ body, headers }`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectorWebhooks, WebhookRequest, WebhookVerification } from '../kit/contract.js';
import { isShopDomain } from './auth.js';

export interface ShopifyWebhookEvent {
  /** `inventory_levels/update`. */
  topic: string;
  shopDomain: string;
  /** `X-Shopify-Webhook-Id`: one delivery (the same on Shopify's retries of it). */
  webhookId: string;
  /** `X-Shopify-Event-Id`: the event (the same across subscriptions to one topic). */
  eventId: string | undefined;
  /** `X-Shopify-Triggered-At`: when the change happened; a retry carries the original, so older means stale. */
  triggeredAt: string | undefined;
  apiVersion: string | undefined;
  payload: unknown;
}

const header = (r: WebhookRequest, name: string): string | undefined => r.headers[name] ?? r.headers[name.toLowerCase()];

/** Checks `X-Shopify-Hmac-Sha256`. The time is not used: Shopify signs no timestamp (stale retries are recognised by `triggeredAt`). */
export function verifyShopifyWebhook(request: WebhookRequest, secret: string): WebhookVerification {
  const given = header(request, 'x-shopify-hmac-sha256');
  if (!given) return { ok: false, reason: 'missing X-Shopify-Hmac-Sha256' };
  if (!secret) return { ok: false, reason: 'no webhook secret configured' };
  const expected = createHmac('sha256', secret).update(request.body).digest();
  const actual = Buffer.from(given, 'base64');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return { ok: false, reason: 'signature does not match' };
  return { ok: true };
}

/** The event of a verified request; throws on a request that is not a Shopify webhook. */
export function parseShopifyWebhook(request: WebhookRequest): ShopifyWebhookEvent[] {
  const topic = header(request, 'x-shopify-topic');
  const shopDomain = header(request, 'x-shopify-shop-domain');
  const webhookId = header(request, 'x-shopify-webhook-id');
  if (!topic || !shopDomain || !webhookId) throw new TypeError('shopify webhook: X-Shopify-Topic, -Shop-Domain and -Webhook-Id are required');
  if (!isShopDomain(shopDomain)) throw new TypeError('shopify webhook: X-Shopify-Shop-Domain is not a *.myshopify.com shop');
  const payload: unknown = JSON.parse(Buffer.from(request.body).toString('utf8'));
  return [{ topic, shopDomain, webhookId, eventId: header(request, 'x-shopify-event-id'), triggeredAt: header(request, 'x-shopify-triggered-at'), apiVersion: header(request, 'x-shopify-api-version'), payload }];
}

export const shopifyWebhooks: ConnectorWebhooks<ShopifyWebhookEvent> = {
  verify: (request, secret) => verifyShopifyWebhook(request, secret),
  parse: parseShopifyWebhook,
};
