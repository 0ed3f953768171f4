/**
 * The in-process transport's publish side: subscribers by NATS-style subject pattern
 * (`*` one token, `>` the rest). Delivery is at least once: a handler that throws makes the
 * relay retry the message.
 */
export interface BusMessage {
  subject: string;
  data: unknown;
  headers: Record<string, string>;
  messageId: string;
}

export type BusHandler = (msg: BusMessage) => void | Promise<void>;

export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

export class InProcessBus {
  readonly #subs = new Set<{ pattern: string; handler: BusHandler }>();

  subscribe(pattern: string, handler: BusHandler): () => void {
    const sub = { pattern, handler };
    this.#subs.add(sub);
    return () => this.#subs.delete(sub);
  }

  async publish(msg: BusMessage): Promise<void> {
    for (const sub of this.#subs) {
      if (subjectMatches(sub.pattern, msg.subject)) await sub.handler(msg);
    }
  }
}
