// The single-writer lease of a session (docs/reliability.md "Lease hand-over"): take, renew (one or many in
// one statement), try many at once, release, ask who holds it; and the writer's protection record, written under the lease.
import {
  acquireLease,
  acquireLeases,
  ensureSession,
  getSession,
  releaseLease,
  renewLease,
  renewLeases,
  setProtection,
} from '../db/queries/sessions.js';
import type { Protection } from '../protection.js';
import type { Lease, StoreContext } from './types.js';

/** Takes the session's lease for `ttlMs` (creating the session row if needed); null when another live holder has it. */
export async function acquire(
  ctx: StoreContext,
  sessionId: string,
  owner: string,
  ttlMs: number,
): Promise<(Lease & { expiresAt: Date }) | null> {
  await ensureSession(ctx.db, sessionId);
  const taken = await acquireLease(ctx.db, sessionId, owner, ttlMs);
  return taken ? { owner, ...taken } : null;
}

/** What a batch acquisition says of one session: its new lease, or who holds it (null: could not tell). */
export type LeaseAttempt = { sessionId: string; lease: Lease & { expiresAt: Date } } | { sessionId: string; holder: string | null };

/**
 * Tries many sessions' leases for `owner` in one statement, fenced as `acquire` (a new token each time,
 * never a live lease of another owner); creates the rows of sessions not stored yet. One answer per
 * session (docs/many-sessions.md: standby keepers).
 */
export async function acquireMany(ctx: StoreContext, sessionIds: readonly string[], owner: string, ttlMs: number): Promise<LeaseAttempt[]> {
  const rows = await acquireLeases(ctx.db, sessionIds, owner, ttlMs);
  return rows.map((row) =>
    'token' in row
      ? { sessionId: row.sessionId, lease: { owner, token: row.token, expiresAt: row.expiresAt } }
      : { sessionId: row.sessionId, holder: row.holder },
  );
}

/** Extends `lease` by `ttlMs` from now (the database's clock); null when it was lost. */
export function renew(ctx: StoreContext, sessionId: string, lease: Lease, ttlMs: number): Promise<Date | null> {
  return renewLease(ctx.db, sessionId, lease.owner, lease.token, ttlMs);
}

/**
 * Renews many of `owner`'s leases in one statement (a keeper of many sessions: docs/many-sessions.md).
 * Returns the session ids renewed; a lease missing from it was lost (expired and taken, or released).
 */
export function renewMany(
  ctx: StoreContext,
  owner: string,
  leases: readonly { sessionId: string; token: number }[],
  ttlMs: number,
): Promise<Set<string>> {
  return renewLeases(ctx.db, owner, leases, ttlMs);
}

/** Gives `lease` up if it is still held; false when it was not (lost already). */
export function release(ctx: StoreContext, sessionId: string, lease: Lease): Promise<boolean> {
  return releaseLease(ctx.db, sessionId, lease.owner, lease.token);
}

/** Who holds the session's lease right now (by the database's clock), or null. */
export async function holder(ctx: StoreContext, sessionId: string): Promise<{ owner: string; expiresAt: Date } | null> {
  const session = await getSession(ctx.db, sessionId);
  return session?.leaseLive && session.leaseOwner && session.leaseExpiresAt
    ? { owner: session.leaseOwner, expiresAt: session.leaseExpiresAt }
    : null;
}

/**
 * Records the writer's measurement of the session's protection (`reasons` empty: protected), under
 * `lease`; false when the lease is no longer held (nothing written).
 */
export function recordProtection(ctx: StoreContext, sessionId: string, lease: Lease, protection: Protection): Promise<boolean> {
  const since = protection.since === null ? null : new Date(protection.since);
  return setProtection(ctx.db, sessionId, lease.owner, lease.token, protection.reasons, since);
}
