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
  /** Files sent with the message (base64 bytes): they make the request multipart/form-data. */
  attachments?: Array<{ filename: string; type: string; content: string }>;
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

/**
 * The request body: urlencoded fields, or, with attachments, multipart/form-data whose
 * `attachment` parts carry the files (Mailgun takes files only as multipart parts).
 */
export function toMailgunBody(m: MailgunMail, idempotencyKey: string): URLSearchParams | FormData {
  const fields = toMailgunForm(m, idempotencyKey);
  if (!m.attachments?.length) return fields;
  const form = new FormData();
  for (const [k, v] of fields) form.append(k, v);
  for (const a of m.attachments) form.append('attachment', new Blob([Buffer.from(a.content, 'base64')], { type: a.type }), a.filename);
  return form;
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
