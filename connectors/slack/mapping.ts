/** A chat message as Slack's `chat.postMessage` body, and Slack's Events API callbacks as ours. */

export interface ChatMessage {
  /** A channel id (`C0123`) or name (`#partners`). */
  channel: string;
  text: string;
  /** Block Kit blocks, passed through. */
  blocks?: unknown[];
  threadTs?: string;
}

export const METADATA_EVENT = 'concord_playbook_step';

export interface SlackPostBody {
  channel: string;
  text: string;
  blocks?: unknown[];
  thread_ts?: string;
  metadata: { event_type: string; event_payload: { idempotency_key: string } };
}

export function toSlackMessage(m: ChatMessage, idempotencyKey: string): SlackPostBody {
  return {
    channel: m.channel,
    text: m.text,
    ...(m.blocks ? { blocks: m.blocks } : {}),
    ...(m.threadTs ? { thread_ts: m.threadTs } : {}),
    metadata: { event_type: METADATA_EVENT, event_payload: { idempotency_key: idempotencyKey } },
  };
}

/** An Events API request body. */
export interface SlackEventEnvelope {
  type: 'event_callback' | 'url_verification' | string;
  event_id?: string;
  event_time?: number;
  team_id?: string;
  challenge?: string;
  event?: { type: string; channel?: string; user?: string; text?: string; ts?: string };
}

export interface ChatEvent {
  kind: string;
  eventId: string | null;
  channel: string | null;
  user: string | null;
  text: string | null;
  /** `url_verification`'s challenge, to be answered as is. */
  challenge: string | null;
}

export function fromSlackEvent(e: SlackEventEnvelope): ChatEvent {
  return {
    kind: e.type === 'event_callback' ? (e.event?.type ?? 'unknown') : e.type,
    eventId: e.event_id ?? null,
    channel: e.event?.channel ?? null,
    user: e.event?.user ?? null,
    text: e.event?.text ?? null,
    challenge: e.challenge ?? null,
  };
}
