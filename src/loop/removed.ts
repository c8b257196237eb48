// A session whose directory is gone for good (many sessions, docs/many-sessions.md): record it as
// removed with a tombstone generation, and stop its loop without a final backup.
import { within } from '../clock.js';
import { LeaseLostError } from '../errors.js';
import { RELEASE_GRACE_MS } from './loop-options.js';
import type { LoopParts } from './parts.js';
import { inSlot } from './schedule.js';
import { stopScheduling, workInFlight } from './shutdown.js';

/** See SessionLoop.tombstone. */
export async function tombstone({ loop, schedule }: LoopParts): Promise<'written' | 'standby' | 'failure'> {
  await schedule.flushing;
  // Without the lease: 'standby' only when another process really holds it (it records the tombstone);
  // a lease lost to an outage or a race is no reason to drop the session without one.
  const notWriter = async () => ((await loop.otherHolder()) ? 'standby' : 'failure');
  const lease = loop.lease.current ?? (await loop.lease.tryAcquire());
  if (!lease) return notWriter();
  try {
    const result = await inSlot(loop.options, () => loop.store.tombstone(loop.options.sessionId, lease));
    if (result.written)
      loop.log.info(
        { generation: result.generation, deleted: result.deleted },
        `the session's directory stayed removed: recorded as removed (tombstone generation ${result.generation}); ` +
          'its history is kept, and restore skips it',
      );
    loop.metrics.generation.set(result.generation);
    loop.metrics.files.set(0);
    loop.metrics.bytes.set(0);
    loop.metrics.sessionRegistered.set(0);
    loop.registered = false;
    return 'written';
  } catch (error) {
    if (error instanceof LeaseLostError) {
      loop.lease.markLost(lease.token, error.message);
      return notWriter();
    }
    loop.databaseError(error, 'tombstone');
    return 'failure';
  }
}

/** See SessionLoop.retire. */
export async function retire(parts: LoopParts): Promise<void> {
  const { loop, startup } = parts;
  stopScheduling(parts);
  if (!startup.booted) {
    loop.phase = 'stopped';
    return;
  }
  loop.phase = 'stopping';
  const deadline = loop.clock.now() + loop.options.shutdownTimeoutMs;
  const left = () => Math.max(0, deadline - loop.clock.now());
  await workInFlight(parts, left);
  await loop.watcher.close();
  await within(loop.clock, loop.lease.release(), Math.max(left(), RELEASE_GRACE_MS));
  loop.metrics.leaseHeld.set(0);
  loop.phase = 'stopped';
}
