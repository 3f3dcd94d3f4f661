/**
 * The memory behind refusal folding (issue 12): which audit row the refusals of one source and
 * code are counted into, for how long, and how many new refusal rows a window may still open.
 * Pure bookkeeping, no SQL: the audit log (audit.ts) writes the rows and their counts. Bounded:
 * the least recently refused source is forgotten first, so a flood from many addresses costs a
 * fixed amount of memory.
 */

/** One folded audit row: its seq, its window, and how many refusals it stands for. */
export interface Fold {
  seq: number;
  /** When the row was opened; refusals fold into it until `firstAt + windowMs`. */
  firstAt: number;
  lastAt: number;
  /** Refusals counted so far. */
  count: number;
}

/** Limits of the fold memory (defaults in constants.ts). */
export interface RefusalFoldsInit {
  windowMs: number;
  maxFolds: number;
  maxNewRowsPerWindow: number;
}

/** A bounded LRU of live folds, and the budget of new refusal rows per window. */
export class RefusalFolds {
  readonly #init: RefusalFoldsInit;
  readonly #folds = new Map<string, Fold>();
  #budgetFrom = Number.NEGATIVE_INFINITY;
  #newRows = 0;

  constructor(init: RefusalFoldsInit) {
    this.#init = init;
  }

  /** How many folds are remembered (at most `maxFolds`). */
  get size(): number {
    return this.#folds.size;
  }

  /** The live fold of `key`, now the most recently used; undefined when none or its window passed. */
  get(key: string, now: number): Fold | undefined {
    const fold = this.#folds.get(key);
    if (!fold) return undefined;
    this.#folds.delete(key);
    if (now - fold.firstAt >= this.#init.windowMs) return undefined;
    this.#folds.set(key, fold);
    return fold;
  }

  /** Remembers a freshly opened row's fold, forgetting the least recently used past the limit. */
  set(key: string, fold: Fold): void {
    this.#folds.delete(key);
    this.#folds.set(key, fold);
    while (this.#folds.size > this.#init.maxFolds) {
      const oldest = this.#folds.keys().next().value as string;
      this.#folds.delete(oldest);
    }
  }

  /** Takes one new refusal row from this window's budget; false when it is spent. */
  takeRow(now: number): boolean {
    if (now - this.#budgetFrom >= this.#init.windowMs) {
      this.#budgetFrom = now;
      this.#newRows = 0;
    }
    if (this.#newRows >= this.#init.maxNewRowsPerWindow) return false;
    this.#newRows++;
    return true;
  }
}
