// Time as a dependency, so the clock-driven loops can be tested without sleeping.

export interface Clock {
  /**
   * Monotonic milliseconds, for measuring and scheduling only: it must not jump when the wall clock
   * is stepped (NTP, a resumed VM), or a step back of minutes would postpone every due backup by as much.
   * It starts near the epoch time but drifts from the wall clock: never store or show it as a
   * timestamp (use wall()).
   */
  now(): number;
  /** The wall clock, ms since the epoch: for timestamps that people and monitoring compare with theirs. */
  wall(): number;
  /** Calls fn after ms; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  // Wall time at start plus monotonic time since: steady, and near the wall clock (but not a timestamp).
  now: () => performance.timeOrigin + performance.now(),
  wall: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(timer);
  },
};

/** Waits for `promise` at most `ms`; resolves whether it settled in time (a rejection counts as settled). */
export async function within(clock: Clock, promise: Promise<unknown> | null, ms: number): Promise<boolean> {
  if (!promise) return true;
  let cancel: () => void = () => {};
  const timeout = new Promise<false>((resolve) => {
    cancel = clock.setTimer(() => resolve(false), Math.max(0, ms));
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    cancel();
  }
}

/** `promise`'s value if it resolves within `ms`, else `fallback` (also when it rejects). */
export async function valueWithin<T, F>(clock: Clock, promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  const box: { value: T | F } = { value: fallback };
  await within(
    clock,
    promise.then((value) => (box.value = value)),
    ms,
  );
  return box.value;
}

/** Resolves after ms on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(resolve, ms));
}
