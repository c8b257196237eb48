// The one retry policy: exponential backoff (initial pause, factor, cap) on the injected clock, with an
// optional deadline. The loops that retry a failed operation take their pauses from here; the torn-read
// re-reads (snapshot.ts, a fixed list) and the restore's wait for a lease holder are waits, not retries,
// and pause on the same injected clock (`sleep` in clock.ts).
import { sleep, type Clock } from './clock.js';

/**
 * Pauses between failed attempts of the long-running loops (backups, start-up steps, following a removed
 * directory): 250 ms, doubling, at most 30 s. The other policies differ only where a rule says why:
 * HELD_RETRY_BACKOFF (src/loop/loop-options.ts) and the connection wait of one-shot commands (src/db/pool.ts,
 * capped at 5 s so --wait is not overshot by much).
 */
export const RETRY_BACKOFF: BackoffPolicy = { initialMs: 250, factor: 2, maxMs: 30_000 };

export interface BackoffPolicy {
  /** Pause after the first failure, ms. */
  initialMs: number;
  /** Each further failure multiplies the pause by this (2: doubling); 1 keeps it constant. */
  factor: number;
  /** Longest pause, ms: the pause stops growing here. */
  maxMs: number;
}

/** The pause after the `failures`-th consecutive failure (1-based) under `policy`, ms. */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  // The exponent is bounded so that a long outage cannot overflow to Infinity before the cap applies.
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.min(Math.max(failures - 1, 0), 64));
}

/** Consecutive failures of one activity, and the pause each one calls for; reset by a success. */
export class Backoff {
  private failures = 0;
  constructor(private readonly policy: BackoffPolicy) {}

  /** Records a failure; returns how long to wait before the next attempt, ms. */
  fail(): number {
    return backoffDelay(this.policy, ++this.failures);
  }

  /** Records a success: the next failure pauses `initialMs` again. */
  reset(): void {
    this.failures = 0;
  }

  /** True while the last attempt failed. */
  get failing(): boolean {
    return this.failures > 0;
  }
}

export interface RetryOptions extends BackoffPolicy {
  clock: Clock;
  /**
   * On `clock.now()`, ms: a pause is cut short to end here, and a retryable failure at or after it is
   * final (then `exhausted` says what to throw). No deadline when absent: retries go on for ever.
   */
  deadline?: number;
  /** Whether a failure is worth another attempt; any other is thrown at once, as it is. */
  retryable(error: unknown): boolean;
  /** What to throw when the deadline has passed with a retryable failure (default: that failure). */
  exhausted?(error: unknown): unknown;
  /** Told before each pause: which attempt failed (1-based), with what, and the pause that follows, ms. */
  onRetry?(retry: { attempt: number; error: unknown; delayMs: number }): void;
}

/**
 * Runs `attempt` (given its 1-based number) until it resolves, pausing on `options.clock` between
 * attempts by the backoff policy. Resolves with the first success; rejects with a failure that is not
 * retryable, or with `exhausted(failure)` once the deadline has passed.
 */
export async function retry<T>(attempt: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const backoff = new Backoff(options);
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!options.retryable(error)) throw error;
      const pause = backoff.fail();
      const left = options.deadline === undefined ? Infinity : options.deadline - options.clock.now();
      if (left <= 0) throw options.exhausted ? options.exhausted(error) : error;
      const delayMs = Math.min(pause, left);
      options.onRetry?.({ attempt: n, error, delayMs });
      await sleep(options.clock, delayMs);
    }
  }
}
