import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { backoffDelay, eventsRoot, formatDuration, isDuration, isoAt, minutesBetween, parseDuration, plusMs, uuidFrom, uuidFromHex } from '../../machines/lib/index.js';

describe('machines/lib', () => {
  it('backoff: initial × multiplier^(retry−1), capped, whole milliseconds, never NaN', () => {
    const b = { initialMs: 100, maxMs: 5000 };
    expect([1, 2, 3, 6, 7, 50].map((n) => backoffDelay(b, n))).toEqual([100, 200, 400, 3200, 5000, 5000]);
    expect(backoffDelay({ initialMs: 1000, multiplier: 1.5, maxMs: 30_000 }, 3)).toBe(2250);
    expect(backoffDelay({ initialMs: 0, maxMs: 5000 }, 5000)).toBe(0);
    expect(backoffDelay({ initialMs: 1, maxMs: 5000 }, Number.MAX_SAFE_INTEGER)).toBe(5000);
    expect(backoffDelay({ initialMs: 1000, maxMs: 5000, jitter: 1 }, 1, 0.25)).toBe(750);
    expect(backoffDelay({ initialMs: 1000, maxMs: 5000 }, 1, 0.99)).toBe(1000); // no jitter in the policy
  });

  it('durations and times', () => {
    expect(parseDuration('PT1M30S')).toBe(90_000);
    expect(['PT1M', 'P1D', 'PT0.5S'].every(isDuration)).toBe(true);
    expect(['P', 'PT', '1M', 'PT1X'].some(isDuration)).toBe(false);
    expect(formatDuration(150_000)).toBe('PT2M30S');
    expect(plusMs('2026-03-01T00:00:00.000Z', 1500)).toBe('2026-03-01T00:00:01.500Z');
    expect(isoAt(0)).toBe('1970-01-01T00:00:00.000Z');
    expect(minutesBetween('2026-03-01T00:00:00Z', '2026-03-01T00:01:30Z')).toBe(1.5);
    expect(minutesBetween(null, '2026-03-01T00:01:30Z')).toBeNull();
  });

  it('uuids: version 8 with the RFC variant, the same as the services derived before', () => {
    const h = createHash('sha256').update('scope\nkey').digest('hex');
    const before = `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    expect(uuidFromHex(h)).toBe(before);
    expect(uuidFrom('w/1/WorkflowStartedEvent')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(() => uuidFromHex('abc')).toThrow();
  });

  it('events root: the recorded one, else concord.events', () => {
    expect(eventsRoot({ events: 't1.events' })).toBe('t1.events');
    expect(eventsRoot({})).toBe('concord.events');
  });
});
