// A clock that moves only when a test moves it, for the loops that run on the injected Clock (backoff,
// debounce, max-delay, lease renewal, shutdown): time-based rules are then checked to the millisecond,
// and no test waits for them in real time.
import type { Clock } from '../../src/clock.js';

interface Timer {
  at: number;
  /** Order of creation: timers due at the same instant fire in the order they were set. */
  seq: number;
  fn: () => void;
}

/** Lets every promise callback queued so far run (and those they queue): one macrotask turn. */
function microtasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class ManualClock implements Clock {
  private time: number;
  private readonly wallAtStart: number;
  private readonly startedAt: number;
  private timers: Timer[] = [];
  private seq = 0;
  /**
   * Awaited after each timer has fired and its microtasks have run, before the next one fires. For
   * code whose timers start real I/O (a database query, a file read): the test sets it to something
   * that resolves once that work is done, so each timer's work ends at its own instant.
   */
  settle: () => Promise<unknown> = async () => undefined;

  /** `start`: the first now(), ms; wall() starts at the real wall clock and moves with now(). */
  constructor(start = 1_000_000) {
    this.time = start;
    this.startedAt = start;
    this.wallAtStart = Date.now();
  }

  now(): number {
    return this.time;
  }

  wall(): number {
    return this.wallAtStart + (this.time - this.startedAt);
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((other) => other !== timer);
    };
  }

  /** How many timers are set and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.length;
  }

  /** When the earliest pending timer is due (on now()'s scale), or null when none is set. */
  next(): number | null {
    return this.earliest()?.at ?? null;
  }

  /**
   * Moves now() forward by `ms` (0: fires only what is due now). Pending microtasks run first; then
   * every timer due by then fires in order of due time, with now() at its due time, and after each one
   * its microtasks run and `settle` is awaited, so a timer set meanwhile that falls due within the step
   * fires in the same call. Throws RangeError for a negative `ms`.
   */
  async advance(ms: number): Promise<void> {
    if (ms < 0) throw new RangeError(`a clock does not go back (advance by ${ms} ms)`);
    const target = this.time + ms;
    for (;;) {
      await microtasks(); // what the caller set in motion may set a timer first
      const timer = this.earliest();
      if (!timer || timer.at > target) break;
      this.timers = this.timers.filter((other) => other !== timer);
      this.time = timer.at;
      timer.fn();
      await microtasks();
      await this.settle();
    }
    this.time = target;
  }

  /**
   * Lets `work` run to its end on this clock: whenever it waits on a timer, now() jumps to that timer;
   * meanwhile real I/O (a connection attempt) gets real time. Resolves or rejects as `work` does. Only
   * for code whose timers are all its own: it jumps to any pending timer.
   */
  async runUntilSettled<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const done = work.finally(() => (settled = true));
    done.catch(() => undefined);
    while (!settled) {
      const next = this.next();
      if (next === null) await new Promise((resolve) => setTimeout(resolve, 5));
      else await this.advance(next - this.time);
    }
    return done;
  }

  private earliest(): Timer | undefined {
    let first: Timer | undefined;
    for (const timer of this.timers) if (!first || timer.at < first.at || (timer.at === first.at && timer.seq < first.seq)) first = timer;
    return first;
  }
}
