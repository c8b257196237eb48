// What the HTTP routes and the long-running commands need from a backup loop, whether it keeps one
// session (Sidecar) or a directory of them (SessionFleet).
import type { Sidecar } from './sidecar.js';

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
  sidecarFor(sessionId: string): Sidecar | null;
  /** Starts; resolves once watching (no later write is missed). Never rejects. */
  start(): Promise<void>;
  /** Final backups, then the leases released; true when everything is stored (see Sidecar.shutdown). */
  shutdown(quietMs?: number): Promise<boolean>;
}
