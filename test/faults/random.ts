// Seeded randomness for the fault suite: a run's seed decides its whole fault plan.
import { mulberry32 } from '../../harness/churn.js';

export class Random {
  private readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next();
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  /**
   * An independent stream for one caller, derived from this seed and `label` only: a caller whose
   * draws depend on timing (a proxy callback, a retry loop) draws from its own stream, so it cannot
   * shift the draws of the run's main sequence.
   */
  stream(label: string): Random {
    let hash = 0x811c9dc5;
    for (const char of label) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193);
    return new Random((mulberry32((this.seed ^ hash) >>> 0)() * 0x1_0000_0000) >>> 0);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('nothing to pick from');
    return item;
  }
}

/** The seed of run `index` of a suite started with `seed`; run 0 uses the seed itself, so one run reproduces. */
export function runSeed(seed: number, index: number): number {
  if (index === 0) return seed >>> 0;
  return (mulberry32((seed ^ Math.imul(index, 0x9e3779b1)) >>> 0)() * 0x1_0000_0000) >>> 0;
}
