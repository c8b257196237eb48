// What the HTTP routes and the long-running commands need from a backup loop, whether it keeps one
// session (SessionLoop) or a directory of them (SessionFleet).
import type { Protection } from '../protection.js';
import type { Lease } from '../store/index.js';
import type { FlushOutcome } from './loop-options.js';

/** The loop of one session this process keeps, as the session API drives it. */
export interface KeptSession {
  /** The lease while this process is the session's writer, else null. */
  readonly writerLease: Lease | null;
  /** Whether the session is protected now (SPEC "Protection"), measured at the call. */
  protection(): Protection;
  /** Reads the whole directory and stores what differs, now (after any backup in progress). */
  backupNow(): Promise<FlushOutcome>;
  /** A write from elsewhere changed the session's head: the directory is read and stored again at once. */
  reclaimHead(): Promise<FlushOutcome>;
}

export interface BackupLoop {
  /** False while something keeps the loop from backing up (/healthz 503); `problems` says what. */
  readonly healthy: boolean;
  /** One phrase per problem; empty when healthy. */
  readonly problems: string[];
  /** The start-up comparison of the directories with what is stored is done (/readyz). */
  readonly ready: boolean;
  /** How the watched directory (the sessions directory, with many) is watched now, or null. */
  readonly watchBackend: 'native' | 'polling' | null;
  /** The session a request that names none means; null when there are many and it must be named. */
  readonly defaultSession: string | null;
  /** The loop of session `sessionId` when this process keeps it, else null. */
  loopFor(sessionId: string): KeptSession | null;
  /**
   * Whether the heartbeat may say "all is well" (SPEC "Session lifecycle", --heartbeat-url): ready and
   * healthy, and every session this process is the writer of is protected. A keeper that writes no
   * session (a standby) says nothing: the writer speaks for the session.
   */
  allProtected(): boolean;
  /** Starts; resolves once watching (no later write is missed). Never rejects. */
  start(): Promise<void>;
  /**
   * Final backups, then the leases released; true when everything is stored (see SessionLoop.shutdown).
   * `botExited`: see ShutdownOptions (one session only; a keeper of many leaves folders to its tombstones).
   */
  shutdown(quietMs?: number, options?: { botExited?: boolean }): Promise<boolean>;
}
