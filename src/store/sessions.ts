// The sessions as a whole: listing them with their head's totals, their history, the folder a mapped one
// is kept from, and deleting one.
import { databaseNow, listGenerations, type GenerationRow } from '../db/queries/generations.js';
import {
  clearLoggedOut,
  deleteSession,
  getSession,
  listSessions,
  lockSession,
  setFolder,
  type SessionSummary,
} from '../db/queries/sessions.js';
import { NothingToRestoreError, RefusedError } from '../errors.js';
import type { StoreContext } from './types.js';

/** The NothingToRestoreError (exit 3, HTTP 404) for a session that does not exist. */
export const noSession = (sessionId: string) =>
  new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);

/** Retained generations, newest first (at most `limit`); NothingToRestoreError when the session does not exist. */
export async function history(ctx: StoreContext, sessionId: string, limit: number | null = null): Promise<GenerationRow[]> {
  if (!(await getSession(ctx.db, sessionId))) throw noSession(sessionId);
  return listGenerations(ctx.db, sessionId, limit);
}

/** The database's clock, which stamps generations: retention ages are measured on it. */
export function storeNow(ctx: StoreContext): Promise<Date> {
  return databaseNow(ctx.db);
}

/**
 * Every session (or one, or those whose id starts with `prefix`) with its head's totals.
 * NothingToRestoreError when the one asked for does not exist.
 */
export async function status(ctx: StoreContext, sessionId: string | null, prefix = ''): Promise<SessionSummary[]> {
  const sessions = await listSessions(ctx.db, sessionId, prefix);
  if (sessionId !== null && sessions.length === 0) throw noSession(sessionId);
  return sessions;
}

/** One session with its head's totals, or null when it does not exist. */
export async function summary(ctx: StoreContext, sessionId: string): Promise<SessionSummary | null> {
  return (await listSessions(ctx.db, sessionId))[0] ?? null;
}

/** Records the sessions-directory folder that mapped session `sessionId` is kept from (creating its row). */
export async function recordFolder(ctx: StoreContext, sessionId: string, folder: string): Promise<void> {
  await setFolder(ctx.db, sessionId, folder);
}

/**
 * Deletes the session and its whole history. NothingToRestoreError when it does not exist; RefusedError
 * while a writer holds its lease.
 */
export async function deleteWhole(ctx: StoreContext, sessionId: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const session = await lockSession(tx, sessionId);
    if (!session) throw noSession(sessionId);
    if (session.leaseLive) {
      throw new RefusedError(
        `session ${sessionId} is in use by ${session.leaseOwner} (lease until ` +
          `${session.leaseExpiresAt?.toISOString()}): stop that sidecar first`,
      );
    }
    await deleteSession(tx, sessionId);
  });
}

/**
 * Ends the session's logged-out state because the operator brought a login back (`restore --generation N
 * --force` of a paired generation, SPEC "Session lifecycle"): the loop then stores that login again instead
 * of refusing it as the logged-out one. False when the session was not logged out.
 */
export function revive(ctx: StoreContext, sessionId: string): Promise<boolean> {
  return clearLoggedOut(ctx.db, sessionId);
}
