/**
 * The highest stream sequence under which a consumer's worker knows every message settled
 * (acked or terminated), kept from its own deliveries and settlements: where a consumer that
 * vanished is recreated from. A message is under the floor once it and every message
 * delivered before it by the same consumer are settled; one nak'ed or still running holds the
 * floor below it, so recreating from `floor + 1` skips nothing that was not applied.
 */
export class AckFloor {
  #floor = 0;
  #order: number[] = [];
  #head = 0;
  readonly #settled = new Set<number>();

  /** 0 when nothing is known. */
  get value(): number {
    return this.#floor;
  }

  /** The server said its ack floor is `seq` (it is never ahead of what was acked). */
  raise(seq: number): void {
    this.#floor = Math.max(this.#floor, seq);
  }

  /** Forget the floor (the stream was made anew: its sequences are not ours). */
  forget(): void {
    this.#floor = 0;
  }

  /** A new consumer starts delivering: deliveries of the old one no longer count. */
  restart(): void {
    this.#order = [];
    this.#head = 0;
    this.#settled.clear();
  }

  delivered(seq: number): void {
    this.#order.push(seq);
  }

  settled(seq: number): void {
    this.#settled.add(seq);
    while (this.#head < this.#order.length && this.#settled.has(this.#order[this.#head]!)) {
      const s = this.#order[this.#head++]!;
      this.#settled.delete(s);
      this.#floor = Math.max(this.#floor, s);
    }
    if (this.#head > 1_024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
