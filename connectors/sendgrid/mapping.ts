/** One message as a playbook sends it, and SendGrid's shapes of it and of its events. */

export interface Mail {
  to: string[];
  cc?: string[];
  bcc?: string[];
  from: string;
  fromName?: string;
  replyTo?: string;
  subject: string;
  text?: string;
  html?: string;
  attachments?: Attachment[];
}

/** A file sent with a message: its bytes as base64. */
export interface Attachment {
  filename: string;
  /** MIME type (`application/pdf`). */
  type: string;
  /** The bytes, base64-encoded. */
  content: string;
}

export interface SendGridMailBody {
  personalizations: Array<{ to: Array<{ email: string }>; cc?: Array<{ email: string }>; bcc?: Array<{ email: string }> }>;
  from: { email: string; name?: string };
  reply_to?: { email: string };
  subject: string;
  content: Array<{ type: 'text/plain' | 'text/html'; value: string }>;
  custom_args: Record<string, string>;
  attachments?: Array<{ content: string; filename: string; type: string; disposition: 'attachment' }>;
}

/** The custom argument that carries our idempotency key (SendGrid echoes custom_args in every event). */
export const KEY_ARG = 'concord_idempotency_key';

const emails = (list: string[]) => list.map((email) => ({ email }));

export function toSendGridMail(m: Mail, idempotencyKey: string): SendGridMailBody {
  const content: SendGridMailBody['content'] = [];
  if (m.text !== undefined) content.push({ type: 'text/plain', value: m.text });
  if (m.html !== undefined) content.push({ type: 'text/html', value: m.html });
  return {
    personalizations: [{ to: emails(m.to), ...(m.cc?.length ? { cc: emails(m.cc) } : {}), ...(m.bcc?.length ? { bcc: emails(m.bcc) } : {}) }],
    from: { email: m.from, ...(m.fromName ? { name: m.fromName } : {}) },
    ...(m.replyTo ? { reply_to: { email: m.replyTo } } : {}),
    subject: m.subject,
    content,
    custom_args: { [KEY_ARG]: idempotencyKey },
    ...(m.attachments?.length ? { attachments: m.attachments.map((a) => ({ content: a.content, filename: a.filename, type: a.type, disposition: 'attachment' as const })) } : {}),
  };
}

/** An Event Webhook event (delivered, bounce, open, ...), as SendGrid posts it. */
export interface SendGridEvent {
  email: string;
  event: string;
  timestamp: number;
  sg_message_id?: string;
  [arg: string]: unknown;
}

export interface MailEvent {
  email: string;
  event: string;
  at: string;
  messageId: string | null;
  idempotencyKey: string | null;
}

export function fromSendGridEvent(e: SendGridEvent): MailEvent {
  return {
    email: e.email,
    event: e.event,
    at: new Date(e.timestamp * 1000).toISOString(),
    messageId: e.sg_message_id ?? null,
    idempotencyKey: typeof e[KEY_ARG] === 'string' ? e[KEY_ARG] : null,
  };
}
