/**
 * SendGrid (e-mail) for playbooks' `communicate: { channel: email, provider: sendgrid }`.
 *
 * @example
 * const sendgrid = createSendGridConnector({ baseUrl: SENDGRID_API });
 * await sendgrid.calls.send({ apiKey }, { to: ['a@example.com'], from: 'ops@example.com', subject: 'Hi', text: '...' }, ctx);
 */
import { defineConnector } from '../kit/contract.js';
import { sendMail, type SendGridSettings } from './client.js';
import { classifySendGrid } from './errors.js';
import { fromSendGridEvent, type Mail } from './mapping.js';
import { sendgridWebhooks } from './webhooks.js';

export function createSendGridConnector(settings: SendGridSettings) {
  return defineConnector({
    id: 'sendgrid',
    auth: 'api_key',
    calls: { send: (creds, input: Mail, ctx) => sendMail(settings, creds, input, ctx) },
    webhooks: sendgridWebhooks,
    mapping: { event: { fromProvider: fromSendGridEvent } },
    classify: classifySendGrid,
  });
}

export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
export * from './webhooks.js';
export * from './auth.js';
