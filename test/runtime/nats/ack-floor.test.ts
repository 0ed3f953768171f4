import { describe, expect, it } from 'vitest';
import { AckFloor } from '../../../runtime/nats/ack-floor.js';

describe('AckFloor', () => {
  it('rises only over messages settled together with every one delivered before them', () => {
    const f = new AckFloor();
    for (const s of [3, 5, 8, 9]) f.delivered(s);
    f.settled(5);
    expect(f.value).toBe(0); // 3 still running
    f.settled(3);
    expect(f.value).toBe(5);
    f.settled(9);
    expect(f.value).toBe(5); // 8 holds it
    f.settled(8);
    expect(f.value).toBe(9);
  });

  it('a message handed back (never settled) holds the floor below it across a new consumer; the server floor and forget move it', () => {
    const f = new AckFloor();
    f.raise(10);
    f.delivered(11);
    f.delivered(12);
    f.settled(12);
    expect(f.value).toBe(10); // 11 was nak'ed on a stop
    f.restart();
    f.delivered(11);
    f.settled(11);
    expect(f.value).toBe(11);
    f.raise(7);
    expect(f.value).toBe(11); // never lowered by an older server floor
    f.forget();
    expect(f.value).toBe(0);
  });
});
