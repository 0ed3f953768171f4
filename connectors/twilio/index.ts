/**
 * Twilio (SMS) for playbooks' `communicate: { channel: sms, provider: twilio }`.
 *
 * @example
 * const twilio = createTwilioConnector({ baseUrl: TWILIO_API });
 * await twilio.calls.send({ apiKey: authToken }, { accountSid: 'AC...', to: '+14155550100', from: '+14155550199', body: '...' }, ctx);
 */
import { defineConnector } from '../kit/contract.js';
import { sendSms, type TwilioSettings } from './client.js';
import { classifyTwilio } from './errors.js';
import { fromTwilioMessage, type Sms } from './mapping.js';
import { twilioWebhooks } from './webhooks.js';

export function createTwilioConnector(settings: TwilioSettings) {
  return defineConnector({
    id: 'twilio',
    auth: 'api_key',
    calls: { send: (creds, input: Sms, ctx) => sendSms(settings, creds, input, ctx) },
    webhooks: twilioWebhooks,
    mapping: { message: { fromProvider: fromTwilioMessage } },
    classify: classifyTwilio,
  });
}

export * from './auth.js';
export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
export * from './webhooks.js';
