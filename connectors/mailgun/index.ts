/**
 * Mailgun (e-mail) for playbooks' `communicate: { channel: email, provider: mailgun }`.
 *
 * @example
 * const mailgun = createMailgunConnector({ baseUrl: MAILGUN_API });
 * await mailgun.calls.send({ apiKey }, { domain: 'mg.example.com', to: ['a@example.com'], from: 'ops@mg.example.com', subject: 'Hi', text: '...' }, ctx);
 */
import { defineConnector } from '../kit/contract.js';
import { sendMessage, type MailgunSettings } from './client.js';
import { classifyMailgun } from './errors.js';
import { fromMailgunEvent, type MailgunMail } from './mapping.js';
import { mailgunWebhooks } from './webhooks.js';

export function createMailgunConnector(settings: MailgunSettings) {
  return defineConnector({
    id: 'mailgun',
    auth: 'api_key',
    calls: { send: (creds, input: MailgunMail, ctx) => sendMessage(settings, creds, input, ctx) },
    webhooks: mailgunWebhooks,
    mapping: { event: { fromProvider: fromMailgunEvent } },
    classify: classifyMailgun,
  });
}

export * from './auth.js';
export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
export * from './webhooks.js';
