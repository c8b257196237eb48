// The parts one session's loop is made of, as the code that drives several of them sees them.
import type { LoopContext } from './context.js';
import type { Schedule } from './schedule.js';
import type { StartUp } from './startup.js';
import type { HistoryThinning } from './thinning.js';

export interface LoopParts {
  /** The settings, collaborators and state every part shares. */
  readonly loop: LoopContext;
  readonly startup: StartUp;
  readonly schedule: Schedule;
  readonly thinning: HistoryThinning;
}
