// Thinning one session's history to the retention schedule, in the background and off the backup path.
import type { LoopContext } from './context.js';
import { THIN_EVERY_MS } from './loop-options.js';
import { inSlot } from './schedule.js';

export class HistoryThinning {
  /** The pass in progress, if any. */
  running: Promise<void> | null = null;
  private lastAt = -Infinity;
  /** The first pass of a process, and the one after a failed pass, sweep the whole session. */
  private sweepAllNext = true;

  constructor(private readonly loop: LoopContext) {}

  /** Starts a pass unless one runs, the loop is stopping, or the last one began less than THIN_EVERY_MS ago. */
  soon(): void {
    const { loop } = this;
    const now = loop.clock.now();
    if (this.running || loop.stopping || now - this.lastAt < THIN_EVERY_MS) return;
    this.lastAt = now;
    // An earlier pass may have been cut off (a shutdown, an outage) after deleting generations.
    const sweepAll = this.sweepAllNext;
    this.running = inSlot(loop.options, () => loop.store.thin(loop.options.sessionId, loop.options.retention, { sweepAll }))
      .then((thinned) => {
        this.sweepAllNext = false;
        if (thinned.generations > 0 || thinned.files > 0)
          loop.log.info({ ...thinned }, `history thinned to the retention schedule (${loop.options.retention.text})`);
      })
      .catch((error) => {
        this.sweepAllNext = true;
        loop.databaseError(error, 'thinning');
      })
      .finally(() => (this.running = null));
  }
}
