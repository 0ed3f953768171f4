/**
 * Microsoft Teams (chat) for playbooks' `communicate: { channel: chat, provider: teams }`, over an
 * incoming webhook. Teams sends nothing back to an incoming webhook, so there is no `webhooks`.
 *
 * @example
 * const teams = createTeamsConnector();
 * await teams.calls.postMessage({ apiKey: 'https://contoso.webhook.office.com/webhookb2/...' }, { title: 'Partner health', text: '...' }, ctx);
 */
import { defineConnector } from '../kit/contract.js';
import { postCard, type TeamsSettings } from './client.js';
import { classifyTeams } from './errors.js';
import { fromMessageCard, toMessageCard, type TeamsMessage } from './mapping.js';

export function createTeamsConnector(settings: TeamsSettings = {}) {
  return defineConnector({
    id: 'teams',
    auth: 'api_key',
    calls: { postMessage: (creds, input: TeamsMessage, ctx) => postCard(settings, creds, input, ctx) },
    mapping: { card: { fromProvider: fromMessageCard, toProvider: toMessageCard } },
    classify: classifyTeams,
  });
}

export * from './auth.js';
export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
