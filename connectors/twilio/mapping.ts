/** An SMS as Twilio's form fields, and Twilio's Message resource as ours. */

export interface Sms {
  /** The account the message is sent from (`AC...`). */
  accountSid: string;
  /** An API key SID (`SK...`) when the secret is an API key's, not the account's Auth Token. */
  keySid?: string;
  /** E.164, e.g. `+14155550100`. */
  to: string;
  /** A Twilio number (E.164) or alphanumeric sender id; or `messagingServiceSid`. */
  from?: string;
  messagingServiceSid?: string;
  body: string;
}

export function toTwilioForm(s: Sms): URLSearchParams {
  const f = new URLSearchParams();
  f.set('To', s.to);
  if (s.messagingServiceSid) f.set('MessagingServiceSid', s.messagingServiceSid);
  else if (s.from) f.set('From', s.from);
  f.set('Body', s.body);
  return f;
}

/** The Message resource Twilio answers with (the fields we read). */
export interface TwilioMessage {
  sid: string;
  status: string;
  to: string;
  from: string | null;
  num_segments?: string;
  date_created?: string;
  error_code?: number | null;
}

export interface SmsSent {
  sid: string;
  status: string;
  to: string;
  segments: number;
}

export function fromTwilioMessage(m: TwilioMessage): SmsSent {
  return { sid: m.sid, status: m.status, to: m.to, segments: Number(m.num_segments ?? 1) };
}
