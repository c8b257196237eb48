// The fence every write of a session's history passes: inside the write's transaction, the session row is
// locked and the caller's lease must still be the live one (docs/reliability.md "Fenced generations").
import type { Queryable } from '../db/pool.js';
import { lockSession, type LockedSession } from '../db/queries/sessions.js';
import { LeaseLostError } from '../errors.js';
import type { Lease } from './types.js';

/**
 * Locks the session row (its marker columns come with it) and returns it while `lease` is the live lease
 * of the session; throws LeaseLostError otherwise — the caller writes nothing and its transaction ends.
 */
export async function fenced(tx: Queryable, sessionId: string, lease: Lease): Promise<LockedSession> {
  const session = await lockSession(tx, sessionId);
  if (!session || session.leaseOwner !== lease.owner || session.leaseToken !== lease.token || !session.leaseLive) {
    throw new LeaseLostError(
      `the lease on session ${sessionId} is no longer held by ${lease.owner} (token ${lease.token}); nothing was written`,
    );
  }
  return session;
}
