import { describe, expect, it } from 'vitest';
import { JournalItems } from '../../../http/console/pages/actor.js';
import { IntegrationsPage } from '../../../http/console/pages/lists.js';
import { statePaths } from '../../../http/console/parts.js';

describe('console page parts', () => {
  it("show a connection's budget and breaker from the status route's outbound figures", async () => {
    const html = await IntegrationsPage({
      groups: [
        {
          tenant: 'vendor-1',
          provider: 'shopify',
          actors: [],
          status: {
            connections: [
              {
                connectionId: 'vendor-1:shopify:shop-a',
                account: 'shop-a',
                state: 'connected',
                tokenExpiresAt: null,
                lastWebhook: null,
                lastError: null,
                outbound: {
                  budget: { limit: '2/s:40', usedInWindow: 17, throttledCalls: 3, windowSeconds: 60, scope: 'account' },
                  breaker: { state: 'open', consecutiveFailures: 5, openedAt: '2026-12-07T09:00:00.000Z' },
                  errorRate: 0.25,
                  averageResponseMs: 181.4,
                  deadLetters: 2,
                },
                syncLag: 4,
              },
            ],
          },
        },
      ],
    }).toString();
    expect(html).toContain('2/s:40 · 17 used in 60 s · 3 throttled');
    expect(html).toMatch(/<span class="badge failed">open<\/span> 5 consecutive failures/);
    expect(html).toContain('25.0%');
    expect(html).toContain('181 ms');
    // a field the console does not know yet is still shown
    expect(html).toMatch(/data-field="syncLag"><dt>syncLag<\/dt><dd>4<\/dd>/);
  });

  it("link a journal entry to its transition's trace id when tracing recorded one", async () => {
    const entry = { version: 2, messageId: 'm', kind: 'event' as const, targetPath: '', event: { type: 'relationship.activate' }, input: null, value: { active: 'open' }, at: '2026-12-07T09:00:00.000Z' };
    const html = await JournalItems({ type: 'relationship', id: 'r1', entries: [{ ...entry, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' }, { ...entry, version: 3, traceId: null }] }).toString();
    expect(html).toContain('data-trace-id="4bf92f3577b34da6a3ce929d0e0e4736"');
    expect(html.match(/data-trace-id/g)).toHaveLength(1);
  });

  it('read state values as paths', () => {
    expect(statePaths('draft')).toEqual(['draft']);
    expect(statePaths({ active: 'open' })).toEqual(['active.open']);
    expect(statePaths({ run: { a: 'x', b: { c: 'y' } } })).toEqual(['run.a.x', 'run.b.c.y']);
  });
});
