import type { EventObject } from 'xstate';
import type { ConcordEffect } from '../machines/effects.js';
import { ConcordError, ErrorCode } from './errors.js';

export interface OutboxDraft {
  kind: 'publish' | 'send' | 'call';
  subject: string;
  messageId: string;
  payload: unknown;
  headers: Record<string, string>;
}

const SUBJECT_TOKEN = /^[A-Za-z0-9_\-:@]+$/;

/** Subject for events addressed to one actor. Ids with dots are encoded so tokens stay intact. */
export function actorSubject(type: string, id: string, prefix = 'concord'): string {
  return `${prefix}.actor.${type}.${encodeToken(id)}`;
}

export function encodeToken(s: string): string {
  return SUBJECT_TOKEN.test(s) ? s : `~${Buffer.from(s).toString('base64url')}`;
}

export function decodeToken(s: string): string {
  return s.startsWith('~') ? Buffer.from(s.slice(1), 'base64url').toString() : s;
}

/**
 * Turns what a transition emitted into outbox rows with deterministic idempotency keys, and
 * the correlation ids it registered.
 */
export function toOutbox(emitted: readonly EventObject[], keyPrefix: string): { outbox: OutboxDraft[]; correlations: string[] } {
  const out: OutboxDraft[] = [];
  const correlations: string[] = [];
  for (const e of emitted) {
    if (!e.type.startsWith('concord.')) continue; // an emit meant for in-memory listeners only
    const eff = e as ConcordEffect;
    if (eff.type === 'concord.correlate') {
      if (typeof eff.id !== 'string' || eff.id === '') throw new ConcordError(ErrorCode.TransitionFailed, 'effect concord.correlate needs an id');
      correlations.push(eff.id);
      continue;
    }
    const messageId = `${keyPrefix}#${out.length}`;
    switch (eff.type) {
      case 'concord.publish':
        if (typeof eff.subject !== 'string' || eff.subject === '' || /\s/.test(eff.subject)) {
          throw new ConcordError(ErrorCode.TransitionFailed, `effect concord.publish has an invalid subject '${String(eff.subject)}'`);
        }
        if (eff.messageId !== undefined && (typeof eff.messageId !== 'string' || eff.messageId === '')) {
          throw new ConcordError(ErrorCode.TransitionFailed, 'effect concord.publish has an empty messageId');
        }
        out.push({ kind: 'publish', subject: eff.subject, messageId: eff.messageId ?? messageId, payload: eff.data ?? null, headers: eff.headers ?? {} });
        break;
      case 'concord.send':
        if (!eff.to?.type || !eff.to?.id || typeof eff.event?.type !== 'string') {
          throw new ConcordError(ErrorCode.TransitionFailed, 'effect concord.send needs to.type, to.id and event.type');
        }
        out.push({ kind: 'send', subject: actorSubject(eff.to.type, eff.to.id), messageId, payload: eff.event, headers: {} });
        break;
      case 'concord.call':
        out.push({
          kind: 'call',
          subject: `concord.call.${eff.connector}.${eff.operation}`,
          messageId,
          payload: { connector: eff.connector, operation: eff.operation, input: eff.input ?? null, replyTo: eff.replyTo ?? null },
          headers: {},
        });
        break;
      default:
        throw new ConcordError(ErrorCode.TransitionFailed, `unknown effect type '${(e as EventObject).type}'`);
    }
  }
  return { outbox: out, correlations };
}
