/**
 * A bounded LRU with idle expiry, on a Map's insertion order: the first key is the least
 * recently used. `get` refreshes; `sweep` drops entries idle for longer than `idleMs`.
 */
export class LruCache<V> {
  readonly #map = new Map<string, { value: V; usedAt: number }>();

  constructor(
    readonly capacity: number,
    readonly idleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const hit = this.#map.get(key);
    if (!hit) return undefined;
    this.#map.delete(key);
    hit.usedAt = this.now();
    this.#map.set(key, hit);
    return hit.value;
  }

  /** The value without refreshing its place. */
  peek(key: string): V | undefined {
    return this.#map.get(key)?.value;
  }

  set(key: string, value: V): void {
    if (this.capacity <= 0) return;
    this.#map.delete(key);
    this.#map.set(key, { value, usedAt: this.now() });
    while (this.#map.size > this.capacity) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#map.delete(key);
  }

  /** Passivates idle entries; returns how many were dropped. */
  sweep(): number {
    const cutoff = this.now() - this.idleMs;
    let dropped = 0;
    for (const [key, entry] of this.#map) {
      if (entry.usedAt > cutoff) break; // insertion order is recency order
      this.#map.delete(key);
      dropped++;
    }
    return dropped;
  }

  get size(): number {
    return this.#map.size;
  }

  clear(): void {
    this.#map.clear();
  }
}
