import type { Logger } from '../../runtime/logger.js';
import type { ConsoleQueries } from './console.js';

export interface ActorMark {
  version: number;
  paused: boolean;
}

interface Watcher {
  ref: { type: string; id: string };
  last: ActorMark | null;
  changed(mark: ActorMark): void;
  ended(): void;
}

/**
 * Tells watchers when an actor's version or pause mark changes, in any process: while anyone
 * watches, one statement every `everyMs` reads the marks of every watched actor (a primary-key
 * lookup each), so a hundred open console pages cost one query per tick, and none cost nothing.
 * Polling rather than a commit hook sees commits of every process without a NOTIFY on the hot
 * path. `stop()` ends every watch (SIGTERM closes the console's live streams with it).
 */
export class ActorWatch {
  readonly #watchers = new Set<Watcher>();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #stopped = false;

  constructor(
    private readonly queries: ConsoleQueries,
    private readonly log: Logger,
    private readonly everyMs = 50,
  ) {}

  /**
   * Calls `changed` whenever the actor's version or pause mark differs from `from` (and from the
   * last mark reported). Answers the unwatch function; `ended` is called when the watch stops.
   */
  watch(ref: { type: string; id: string }, from: ActorMark | null, changed: (mark: ActorMark) => void, ended: () => void): () => void {
    if (this.#stopped) {
      ended();
      return () => undefined;
    }
    const w: Watcher = { ref, last: from, changed, ended };
    this.#watchers.add(w);
    this.#schedule();
    return () => {
      this.#watchers.delete(w);
    };
  }

  /** Watchers now (figures, tests). */
  get size(): number {
    return this.#watchers.size;
  }

  #schedule(): void {
    if (this.#timer || this.#polling || this.#stopped || this.#watchers.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#poll();
    }, this.everyMs);
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    try {
      const watchers = [...this.#watchers];
      const keys = new Map(watchers.map((w) => [`${w.ref.type}/${w.ref.id}`, w.ref]));
      const marks = await this.queries.marks([...keys.values()]);
      for (const w of watchers) {
        const m = marks.get(`${w.ref.type}/${w.ref.id}`);
        if (!m || !this.#watchers.has(w)) continue;
        if (w.last && w.last.version === m.version && w.last.paused === m.paused) continue;
        w.last = m;
        try {
          w.changed(m);
        } catch (err) {
          this.log.warn({ err }, 'a console watcher failed');
        }
      }
    } catch (err) {
      if (!this.#stopped) this.log.warn({ err }, 'watching actors for the console failed; retrying');
    } finally {
      this.#polling = false;
      this.#schedule();
    }
  }

  /** Ends every watch and refuses new ones. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#watchers) w.ended();
    this.#watchers.clear();
  }
}
