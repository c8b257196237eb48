// The shapes the store takes and gives: leases, backup options and outcomes, verify and thinning results.
import type { Database } from '../db/pool.js';
import type { FileStamp } from '../snapshot.js';
import type { RowCodec } from './codec/index.js';

/** What happened to a session's login, as a backup or an operator saw it (baileys_keeper_session_events_total). */
export type LoginEvent = 'paired' | 'logged_out' | 'repaired';

/** Why a backup was refused: the never-backwards rule, another login, a login dropped unseen, a logged-out login back. */
export type Refusal = 'rollback' | 'identity' | 'unregistered' | 'logged_out_login';

/**
 * What the caller watched happen to the head's paired login in this run (BackupOptions.login):
 * - 'seen': the directory held it (a read that stored it or found it equal);
 * - 'dropped': then creds.json went away with the directory still there (deleted in place);
 * - 'replaced': then the directory itself went away (wiped, or moved, or unmounted: the keeper cannot tell);
 * - null: nothing seen in this run (start, a takeover): the guard's case.
 */
export type LoginSeen = 'seen' | 'dropped' | 'replaced' | null;

/** The single-writer lease a backup must hold; its token fences off writers that lost it. */
export interface Lease {
  owner: string;
  token: number;
}

export interface BackupOptions {
  lease: Lease;
  allowReplace: boolean;
  /** Recorded with the generation: "backup", "import", "watch", "rescan", "shutdown", "api"… */
  reason: string;
  /**
   * Names the snapshot speaks for. null: the whole directory, so stored files absent from it are
   * deletions. A set: only those names (the sidecar's dirty set); others are left as stored.
   */
  scope?: ReadonlySet<string> | null;
  /**
   * Skip the never-backwards check for this backup (docs/reliability.md): the directory is known to be the
   * live bot's — its loop stored it, then a write from elsewhere (the session API) changed the head.
   */
  allowRollback?: boolean;
  /**
   * What the caller watched happen to the head's paired login in this run (SPEC "Session lifecycle"; see
   * LoginSeen). With 'seen' or 'dropped', a creds.json missing or unpaired now is a logout the keeper saw,
   * stored as a LOGOUT_REASON generation instead of refused; with 'replaced' only unpaired creds are (a
   * directory back without creds.json may be a remount half done). With 'dropped' or 'replaced', another
   * paired login is a re-pairing. null (the default) keeps the guard: what the keeper did not see is refused.
   */
  login?: LoginSeen;
  /**
   * The metadata each file of the snapshot was read with, for the files whose metadata proves what was
   * read (outside the racy window, audit.ts `trustworthy`): recorded with the head's versions so that a
   * restart compares the directory by metadata (store/stamps.ts). Files without one are read then.
   */
  stamps?: ReadonlyMap<string, FileStamp>;
}

export type BackupResult =
  | {
      kind: 'success';
      generation: number;
      changed: number;
      /** Bytes of the changed files' contents (as on disk, before any encryption). */
      changedBytes: number;
      deleted: number;
      totalFiles: number;
      totalBytes: number;
      registered: boolean;
      /** What this generation did to the session's login, if anything (src/store/lifecycle.ts). */
      event: LoginEvent | null;
    }
  | { kind: 'noop'; generation: number }
  | { kind: 'refused'; generation: number; reason: string; refusal: Refusal };

export interface VerifyFailure {
  /** The file; '' for the session's encryption marker. */
  name: string;
  /** The generation that wrote the row; null for the encryption marker. */
  generationFrom: number | null;
  reason: string;
  /** The row is encrypted under a key id that is not configured. */
  missingKey: string | null;
  /** What to do about it (the same for every row it applies to). */
  hint?: string;
}

export interface ThinResult {
  /** Generations and file versions deleted. */
  generations: number;
  files: number;
  /** Generations retained. */
  retained: number;
  /** Write transactions it took (each short and bounded). */
  transactions: number;
}

/** The reason of a logout generation (SPEC "Session lifecycle"): seen happen, or the `logout` command. */
export const LOGOUT_REASON = 'logout';

/** The reason of a tombstone generation: the session's directory was removed (docs/many-sessions.md). */
export const TOMBSTONE_REASON = 'removed';

/** What every store operation works with: the database, the row codec, and the store-wide settings. */
export interface StoreContext {
  readonly db: Database;
  readonly codec: RowCodec;
  /** --allow-rollback: store a directory older than the head (docs/reliability.md "Never backwards"). */
  readonly allowRollback: boolean;
}
