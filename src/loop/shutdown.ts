// Stopping one session's loop: the quiet wait, the final full backup retried until the deadline, the
// lease released.
import { sleep, valueWithin, within } from '../clock.js';
import { RELEASE_GRACE_MS, RETRY_BACKOFF, type ShutdownOptions } from './loop-options.js';
import { directoryPresent, storeRemovedLogin } from './backup-pass.js';
import type { LoopParts } from './parts.js';

/** Stops scheduling: nothing new is started: start-up retries end, the backup and audit timers and the protection check are dropped. */
export function stopScheduling({ loop, startup, schedule }: LoopParts): void {
  startup.stop();
  schedule.cancel();
  loop.protection.cancel();
}

/** Waits, bounded by `ms()` each, for start-up, the backup and the thinning in flight. */
export async function workInFlight({ loop, startup, schedule, thinning }: LoopParts, ms: () => number): Promise<void> {
  await within(loop.clock, startup.booted, ms());
  await within(loop.clock, schedule.flushing, ms());
  await within(loop.clock, thinning.running, ms());
}

/** Stores the logout of a removed directory under the lease (taken again if lost), retried until `deadline`; true once stored. */
async function storeLogoutUntil({ loop }: LoopParts, deadline: number, left: () => number): Promise<boolean> {
  const { clock, lease, next } = loop;
  for (;;) {
    const current = lease.current ?? (await valueWithin(clock, lease.tryAcquire(), left(), null));
    if (current) {
      const outcome = await valueWithin(clock, storeRemovedLogin(loop, current), left(), 'failure' as const);
      if (outcome !== 'failure') return true;
    } else if (await valueWithin(clock, loop.otherHolder(), left(), false)) return true; // that writer speaks for it now
    const now = clock.now();
    if (now >= deadline) return false;
    await sleep(clock, Math.min(Math.max(next.retryAt - now, RETRY_BACKOFF.initialMs), deadline - now));
  }
}

/** See SessionLoop.shutdown. */
export async function shutdown(parts: LoopParts, quietMs: number, options: ShutdownOptions = {}): Promise<boolean> {
  const { loop, startup, schedule } = parts;
  const { clock, dirty, held, lease, next } = loop;
  const deadline = options.deadline ?? clock.now() + loop.options.shutdownTimeoutMs;
  const releaseGraceMs = options.releaseGraceMs ?? RELEASE_GRACE_MS;
  if (!startup.booted) {
    loop.phase = 'stopped';
    startup.stop();
    return true; // never started: nothing watched, nothing to store
  }
  if (loop.phase !== 'stopped') loop.phase = 'stopping';
  stopScheduling(parts);
  const quietSince = clock.now();
  // A bot that never goes quiet must not use up the whole budget: half of it is kept for the final backup.
  const quietDeadline = quietSince + Math.min(loop.options.shutdownTimeoutMs, deadline - quietSince) / 2;
  for (;;) {
    const quietUntil = Math.min(Math.max(loop.lastEventAt, quietSince) + quietMs, quietDeadline);
    const now = clock.now();
    if (now >= quietUntil) break;
    await sleep(clock, quietUntil - now);
  }
  // Every wait below is bounded by the deadline: a black-holed database must not hold the pod past
  // its grace period (it would be SIGKILLed without releasing anything).
  const left = () => deadline - clock.now();
  await workInFlight(parts, left);
  let stored = false;
  if (!(await directoryPresent(loop.options.dir))) {
    if (options.botExited && loop.loginWatch !== null) {
      // `run`: the bot's group exited on its own and took its folder with it, after this loop saw the login
      // there — a bot that wipes its login on a 401 and exits. Stored as a logout (retried like any final
      // backup), so that its restart restores no dead login.
      stored = await storeLogoutUntil(parts, deadline, left);
      if (stored) loop.log.info({ dir: loop.options.dir }, 'the bot exited and its auth directory is gone: stored as a logout');
      else loop.log.error({ dir: loop.options.dir }, 'the bot exited and its auth directory is gone, but the logout could not be stored');
    } else {
      // Gone while the bot may still run elsewhere (moved, unmounted): nothing tells a logout from a remount,
      // so the stored login stays as it is (the guard's case).
      loop.log.warn({ dir: loop.options.dir }, 'the auth directory is gone at shutdown: nothing to store, the stored login is kept');
      stored = true;
    }
  } else if (
    options.skipWhenClean &&
    lease.current &&
    dirty.size === 0 &&
    held.size === 0 &&
    !next.rescanDue &&
    !next.fullNext &&
    loop.protection.unwatchedSince === null &&
    loop.watcher.backend === 'native'
  ) {
    // Polling may not have seen the newest change yet, so only a natively watched directory is trusted.
    stored = true;
  }
  while (!stored) {
    const current = lease.current ?? (await valueWithin(clock, lease.tryAcquire(), left(), null));
    if (!current && (await valueWithin(clock, loop.otherHolder(), left(), false))) {
      stored = true; // another process is the writer; nothing here is ours to store
      break;
    }
    if (current) {
      next.rescanDue = true;
      const outcome = await valueWithin(clock, schedule.flush(), left(), 'failure' as const);
      if (outcome === 'success' || outcome === 'noop' || outcome === 'refused') {
        stored = true; // a refusal is deliberate: the stored login is kept
        break;
      }
    }
    const now = clock.now();
    if (now >= deadline) break;
    await sleep(clock, Math.min(Math.max(next.retryAt - now, RETRY_BACKOFF.initialMs), deadline - now));
  }
  if (!stored)
    loop.log.error({ dirty: dirty.size }, 'final backup did not complete before --shutdown-timeout: the newest changes are not stored');
  else if (lease.current && held.size > held.counts().torn) {
    // Stored what could be stored; what is held back for good (unreadable, too large) is not, and the log
    // must not say otherwise. A torn leftover keeps its previous version, as every backup does.
    const counts = held.counts();
    loop.log.error(
      { held: counts },
      `final backup left ${counts.unreadable + counts.too_large} file(s) held back (unreadable ${counts.unreadable}, too large ${counts.too_large}): ` +
        'they are not stored',
    );
    stored = false;
  }
  await loop.watcher.close();
  // Releasing lets a successor start at once; if it cannot be done quickly the lease expires by itself.
  await within(clock, lease.release(), Math.max(left(), releaseGraceMs));
  loop.metrics.leaseHeld.set(0);
  loop.phase = 'stopped';
  return stored;
}
