// What one session's loop does when its directory watcher or its lease keeper reports something: mark
// changes dirty, ask for a rescan, plan the next backup.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CREDS_FILE, parseCreds } from '../creds.js';
import { describeError } from '../errors.js';
import type { LeaseEvents } from '../lease.js';
import { WatchStartError, type WatchEvents } from '../watcher.js';
import type { LoopParts } from './parts.js';

/**
 * The watcher's events for a loop. `parts` is read at each event: the watcher is built before the parts
 * that handle its events, which exist by the time the first event comes.
 */
export function watchEvents(parts: () => LoopParts): WatchEvents {
  return {
    changed: (name) => changed(parts(), name),
    watching: (backend) => {
      const { loop, startup, schedule } = parts();
      const again = loop.protection.unwatchedSince !== null;
      loop.log.info(
        { dir: loop.options.dir, watch: backend },
        again ? 'watching the auth directory again; backing it up' : 'watching the auth directory',
      );
      // unwatchedSince stays until the rescan below has stored the directory: until then the lag grows.
      startup.stepSucceeded('watch');
      loop.metrics.watchPolling.set(backend === 'polling' ? 1 : 0);
      loop.next.rescanDue = true;
      // A directory back after it went away is read whole, whatever its files' metadata says.
      if (again) loop.next.fromStamps = false;
      schedule.plan();
    },
    lost: (reason) => {
      const { loop } = parts();
      // The folder went away as a whole: wiped by a bot that logged out, or moved, or unmounted; the keeper
      // cannot tell, so what comes back decides (LoginSeen 'replaced').
      if (reason === 'removed' && loop.loginWatch === 'seen') loop.loginWatch = 'replaced';
      loop.protection.unwatchedSince ??= loop.clock.now();
      loop.protection.check();
      if (!loop.stopping && reason === 'removed')
        loop.log.warn(
          { dir: loop.options.dir },
          'the auth directory was removed or replaced: it is backed up again as soon as it reappears',
        );
    },
    fellBack: (error) => {
      const { loop } = parts();
      const pollIntervalMs = loop.options.pollIntervalMs;
      loop.metrics.watchPolling.set(1);
      loop.log.warn(
        { err: describeError(error), pollIntervalMs },
        `native watching is unavailable (${describeError(error)}): polling the directory every ${pollIntervalMs} ms instead. ` +
          'Raise fs.inotify.max_user_instances / fs.inotify.max_user_watches on ' +
          'the node to watch natively, or set --watch poll to say polling is intended',
      );
    },
    error: (error) => {
      const { loop, startup, schedule } = parts();
      if (error instanceof WatchStartError) return startup.stepFailed('watch', error);
      loop.log.warn({ err: describeError(error) }, 'watcher error: falling back to a full rescan');
      loop.next.rescanDue = true;
      void loop.checkWatcher();
      schedule.plan();
    },
  };
}

/** The lease keeper's events for a loop; `parts` as in watchEvents. */
export function leaseEvents(parts: () => LoopParts): LeaseEvents {
  return {
    acquired: () => {
      const { loop, schedule } = parts();
      loop.metrics.leaseHeld.set(1);
      loop.protection.leaseChanged();
      loop.next.reclaim = false; // another writer may have stored since: the directory is checked as any other
      loop.loginWatch = null; // nor did this process see what happened to the login meanwhile
      loop.next.rescanDue = true; // what the previous writer stored may differ from this directory
      loop.next.fromStamps = true; // compared by the metadata the head recorded first: a restart reads only what differs
      schedule.plan();
    },
    lost: () => {
      parts().loop.metrics.leaseHeld.set(0);
    },
    standby: () => parts().loop.compared(),
    databaseError: (error) => parts().loop.databaseError(error, 'lease'),
  };
}

/** A file changed: it is dirty from now, and a pairing (creds.json gaining `me`) is backed up at once. */
function changed(parts: LoopParts, name: string): void {
  const { loop, schedule } = parts;
  const now = loop.clock.now();
  loop.lastEventAt = now;
  loop.dirty.mark(name, now);
  if (name === CREDS_FILE) void checkCreds(parts);
  schedule.plan();
}

/**
 * creds.json changed: when it is gone, the watched login was dropped (a re-pairing may follow before the
 * next backup); when it just gained `me` (a QR scan), that backup must not wait.
 */
async function checkCreds({ loop, schedule }: LoopParts): Promise<void> {
  const text = await readFile(path.join(loop.options.dir, CREDS_FILE), 'utf8').catch((error: NodeJS.ErrnoException) =>
    error.code === 'ENOENT' ? undefined : null,
  );
  if (text === undefined) {
    // Deleted in place — the very directory it watches is still there: the login left it. A directory gone
    // or replaced (moved away, a new mount point) says nothing of the login: see `lost`.
    if (loop.loginWatch === 'seen') loop.loginWatch = (await loop.watcher.intact()) ? 'dropped' : 'replaced';
    return;
  }
  // Said once: a pairing writes creds.json more than once, and each write's check reads it before the
  // urgent backup has stored it (and set loop.registered).
  if (!loop.registered && !loop.next.urgent && text !== null && parseCreds(text)?.registeredJid) {
    loop.log.info('creds.json was just paired: backing up at once');
    loop.next.urgent = true;
    schedule.plan();
  }
}
