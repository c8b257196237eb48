// Whether a session is protected (SPEC "Protection"): what is stored equals what is on disk, or has differed
// for less than --max-delay plus one backup. Measured from the directory and the head (the audit, the held
// files, the watcher), not from what the loop believes it did.
import type { Logger } from './log.js';
import type { HeldReason } from './snapshot.js';

/** Why a session is not protected (the short words of SPEC "Protection"), in the order they are listed. */
export const UNPROTECTED_REASONS = ['not_watched', 'login_elsewhere', 'unreadable', 'too_large', 'held_back', 'lagging'] as const;
export type UnprotectedReason = (typeof UNPROTECTED_REASONS)[number];

/**
 * Time one backup may take after --max-delay before a difference counts as lagging, ms: a backup of
 * thousands of files, or one that waits for a backup slot in a fleet, stays within it.
 */
export const BACKUP_ALLOWANCE_MS = 10_000;

/** What the loop measured, at one moment. */
export interface ProtectionInputs {
  /** Age of the oldest difference between directory and head, seconds. */
  lagSeconds: number;
  /** The directory is not watched (missing, cannot be watched, removed and not yet back). */
  notWatched: boolean;
  /** The directory itself cannot be read. */
  directoryUnreadable: boolean;
  /** Held-back files by reason; torn ones only once held past the allowance. */
  held: Record<HeldReason, number>;
  /** No creds.json in the directory while a directory below it holds one (relative path), else null. */
  loginElsewhere: string | null;
}

export interface Protection {
  protected: boolean;
  /** Empty when protected. */
  reasons: UnprotectedReason[];
  /** Since when it has not been protected (wall clock, ms since the epoch); null when protected. */
  since: number | null;
}

/** The reasons `inputs` give, in UNPROTECTED_REASONS order; `lagLimitMs` is --max-delay plus BACKUP_ALLOWANCE_MS. */
export function unprotectedReasons(inputs: ProtectionInputs, lagLimitMs: number): UnprotectedReason[] {
  const found = new Set<UnprotectedReason>();
  if (inputs.notWatched) found.add('not_watched');
  if (inputs.loginElsewhere !== null) found.add('login_elsewhere');
  if (inputs.directoryUnreadable || inputs.held.unreadable > 0) found.add('unreadable');
  if (inputs.held.too_large > 0) found.add('too_large');
  if (inputs.held.torn > 0) found.add('held_back');
  if (inputs.lagSeconds * 1000 > lagLimitMs) found.add('lagging');
  return UNPROTECTED_REASONS.filter((reason) => found.has(reason));
}

/**
 * Follows one session's protection over time: `update` returns the state and logs each change once
 * (warn when it is lost, info when it is back), so a flapping cause does not flood the log.
 */
export class ProtectionTracker {
  private state: Protection = { protected: true, reasons: [], since: null };

  constructor(
    private readonly log: Logger,
    private readonly lagLimitMs: number,
    private readonly wallNow: () => number,
    /** Told when the session becomes unprotected (false) or protected again (true); not on a change of reasons. */
    private readonly changed: (isProtected: boolean) => void = () => undefined,
  ) {}

  /** The state now, from `inputs`; logs a change of protection or of its reasons. */
  update(inputs: ProtectionInputs): Protection {
    const reasons = unprotectedReasons(inputs, this.lagLimitMs);
    const before = this.state;
    const same = reasons.length === before.reasons.length && reasons.every((reason, i) => reason === before.reasons[i]);
    if (same) return before;
    if (reasons.length === 0) {
      this.state = { protected: true, reasons: [], since: null };
      this.log.info({ protected: true }, 'protected again: everything in the directory is stored');
      this.changed(true);
    } else {
      this.state = { protected: false, reasons, since: before.since ?? this.wallNow() };
      const where = inputs.loginElsewhere ? ` (a login is in ${inputs.loginElsewhere} below the directory)` : '';
      this.log.warn({ protected: false, reasons }, `not protected: ${reasons.join(', ')}${where}`);
      if (before.protected) this.changed(false);
    }
    return this.state;
  }

  /** The last state computed. */
  get current(): Protection {
    return this.state;
  }
}
