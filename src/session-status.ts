// The public status of a session as the status command (--json) and the session API show it.
import { maskJid } from './creds.js';
import type { Protection } from './protection.js';
import type { SessionSummary } from './store/index.js';
import { TOMBSTONE_REASON } from './store/types.js';

/** The public shape of a session's status (CLI --json and the API): phone masked, lease live only. */
export interface SessionStatusJson {
  session_id: string;
  generation: number;
  updated_at: string | null;
  files: number;
  bytes: number;
  registered: boolean;
  /** SPEC "Session lifecycle": paired (a login is stored), unpaired (no QR scanned yet), logged_out. */
  state: 'paired' | 'unpaired' | 'logged_out';
  /** When it was logged out (ISO-8601), while it is. */
  logged_out_at: string | null;
  phone: string | null;
  lease_holder: string | null;
  /** SPEC "Protection": everything on disk is stored (as its writer measured it). */
  protected: boolean;
  /** Why not, when not protected (`not_watched` while no keeper holds the lease). */
  reasons: string[];
  /** Since when it has not been protected (ISO-8601), null when protected or unknown. */
  since: string | null;
  /**
   * Its head is a tombstone: the session's directory was removed for good (docs/many-sessions.md), so there is
   * nothing on disk to protect and `restore --sessions-dir` skips it; history keeps its generations.
   */
  removed: boolean;
  /** With --sessions-dir, the folder a mapped session id is kept from (absent when the id is the folder's name). */
  folder?: string;
}

/**
 * The public status of `s`. `live`: the protection this process measures itself (it is the session's
 * writer); otherwise what the writer recorded — and `not_watched` while no keeper holds the lease.
 */
export function sessionStatusJson(s: SessionSummary, live: Protection | null = null): SessionStatusJson {
  const protection = live
    ? { reasons: live.reasons as string[], since: live.since === null ? null : new Date(live.since).toISOString() }
    : !s.leaseLive || s.protectionReasons === null
      ? {
          reasons: ['not_watched'],
          // Unwatched since it was last unprotected, or since the last keeper's lease ran out (or was released).
          since: s.leaseLive ? null : (s.protectionSince ?? s.leaseExpiresAt ?? s.updatedAt).toISOString(),
        }
      : { reasons: s.protectionReasons, since: s.protectionSince?.toISOString() ?? null };
  return {
    session_id: s.sessionId,
    generation: s.headGeneration,
    updated_at: s.lastBackupAt?.toISOString() ?? null,
    files: s.files,
    bytes: s.bytes,
    registered: s.registeredJid !== null,
    state: s.loggedOut ? 'logged_out' : s.registeredJid !== null ? 'paired' : 'unpaired',
    logged_out_at: s.loggedOut?.at.toISOString() ?? null,
    phone: s.registeredJid === null ? null : maskJid(s.registeredJid),
    lease_holder: s.leaseLive ? s.leaseOwner : null,
    protected: protection.reasons.length === 0,
    reasons: protection.reasons,
    since: protection.since,
    removed: s.headReason === TOMBSTONE_REASON,
    ...(s.folder === null ? {} : { folder: s.folder }),
  };
}
