/**
 * Slack (chat) for playbooks' `communicate: { channel: chat, provider: slack }`.
 *
 * @example
 * const slack = createSlackConnector({ baseUrl: SLACK_API });
 * await slack.calls.postMessage({ accessToken: 'xoxb-...' }, { channel: '#partners', text: '3 integrations need attention' }, ctx);
 */
import { defineConnector } from '../kit/contract.js';
import { postMessage, type SlackSettings } from './client.js';
import { classifySlack } from './errors.js';
import { fromSlackEvent, type ChatMessage } from './mapping.js';
import { slackWebhooks } from './webhooks.js';

export function createSlackConnector(settings: SlackSettings) {
  return defineConnector({
    id: 'slack',
    auth: 'oauth2',
    calls: { postMessage: (creds, input: ChatMessage, ctx) => postMessage(settings, creds, input, ctx) },
    webhooks: slackWebhooks,
    mapping: { event: { fromProvider: fromSlackEvent } },
    classify: classifySlack,
  });
}

export * from './auth.js';
export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
export * from './webhooks.js';
