/** A message as Mailgun's form fields, and Mailgun's webhook events as ours. */

export interface MailgunMail {
  /** The sending domain registered at Mailgun (`mg.example.com`). */
  domain: string;
  to: string[];
  cc?: string[];
  bcc?: string[];
  from: string;
  replyTo?: string;
  subject: string;
  text?: string;
  html?: string;
}

/** The user variable that carries our idempotency key (Mailgun echoes `v:` variables in events as `user-variables`). */
export const KEY_VARIABLE = 'concord-idempotency-key';

export function toMailgunForm(m: MailgunMail, idempotencyKey: string): URLSearchParams {
  const f = new URLSearchParams();
  f.set('from', m.from);
  for (const to of m.to) f.append('to', to);
  for (const cc of m.cc ?? []) f.append('cc', cc);
  for (const bcc of m.bcc ?? []) f.append('bcc', bcc);
  f.set('subject', m.subject);
  if (m.text !== undefined) f.set('text', m.text);
  if (m.html !== undefined) f.set('html', m.html);
  if (m.replyTo) f.set('h:Reply-To', m.replyTo);
  f.set(`v:${KEY_VARIABLE}`, idempotencyKey);
  return f;
}

/** The `event-data` of a Mailgun webhook. */
export interface MailgunEventData {
  event: string;
  timestamp: number;
  recipient?: string;
  message?: { headers?: { 'message-id'?: string } };
  'user-variables'?: Record<string, unknown>;
}

export interface MailEvent {
  email: string;
  event: string;
  at: string;
  messageId: string | null;
  idempotencyKey: string | null;
}

export function fromMailgunEvent(e: MailgunEventData): MailEvent {
  const key = e['user-variables']?.[KEY_VARIABLE];
  return {
    email: e.recipient ?? '',
    event: e.event,
    at: new Date(e.timestamp * 1000).toISOString(),
    messageId: e.message?.headers?.['message-id'] ?? null,
    idempotencyKey: typeof key === 'string' ? key : null,
  };
}
