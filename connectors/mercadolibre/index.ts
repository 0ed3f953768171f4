/**
 * The MercadoLibre connector (items and variations, search and scan, multiget; OAuth with PKCE
 * and single-use refresh tokens; unsigned notifications checked by application id). One
 * connector per seller: `createMercadoLibreConnector({ sellerId, apiBaseUrl, applicationId })`.
 */
import { defineConnector } from '../kit/contract.js';
import { getItem, getMe, missedFeeds, multiget, scanItems, searchItems, setStock, type MercadoLibreSettings } from './client.js';
import { classifyMercadoLibre } from './errors.js';
import { itemMapping } from './mapping.js';
import { mercadolibreWebhooks } from './webhooks.js';

export function createMercadoLibreConnector(settings: MercadoLibreSettings & { applicationId: string | number }) {
  return defineConnector({
    id: 'mercadolibre',
    auth: 'oauth2',
    calls: {
      getMe: (creds, input: Record<string, never>, ctx) => getMe(settings, creds, input, ctx),
      getItem: (creds, input: Parameters<typeof getItem>[2], ctx) => getItem(settings, creds, input, ctx),
      multiget: (creds, input: Parameters<typeof multiget>[2], ctx) => multiget(settings, creds, input, ctx),
      searchItems: (creds, input: Parameters<typeof searchItems>[2], ctx) => searchItems(settings, creds, input, ctx),
      scanItems: (creds, input: Parameters<typeof scanItems>[2], ctx) => scanItems(settings, creds, input, ctx),
      setStock: (creds, input: Parameters<typeof setStock>[2], ctx) => setStock(settings, creds, input, ctx),
      missedFeeds: (creds, input: Parameters<typeof missedFeeds>[2], ctx) => missedFeeds(settings, creds, input, ctx),
    },
    webhooks: mercadolibreWebhooks(settings.applicationId),
    mapping: { item: itemMapping },
    classify: classifyMercadoLibre,
  });
}

export type MercadoLibreConnector = ReturnType<typeof createMercadoLibreConnector>;

export * from './auth.js';
export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
export * from './webhooks.js';
