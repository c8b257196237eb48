// restore's zero-loss hand-over: while an old writer holds the session's lease, restore waits for its
// release up to --lease-wait, looking again every LEASE_POLL_MS, all on the injected clock (no real sleep).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LEASE_POLL_MS, waitForRelease } from '../../src/commands/restore.js';
import { ManualClock } from '../support/manual-clock.js';
import { testLog } from '../support/log.js';
import { testStore } from '../support/store.js';

/** Lets real I/O (a lease query) finish; the manual clock does not move meanwhile. */
const io = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('restore waits for the lease holder on the injected clock', async () => {
  const t = await testStore('hand-over-wait');

  it('returns one look after the holder released, not before', async () => {
    const lease = await t.lease('released', 'old-pod:1');
    const clock = new ManualClock();
    let done = false;
    const waiting = waitForRelease(t.store, 'released', 60_000, testLog, clock).then(() => (done = true));
    await io();
    // Real time passes, the clock does not: still waiting, its next look set on the clock.
    assert.equal(done, false);
    assert.equal(clock.next()! - clock.now(), LEASE_POLL_MS);
    await clock.advance(LEASE_POLL_MS); // a look: still held
    await io();
    assert.equal(done, false);
    await t.store.releaseLease('released', lease);
    const started = clock.now();
    await clock.runUntilSettled(waiting);
    assert.equal(clock.now() - started, LEASE_POLL_MS, 'the next look sees the release');
  });

  it('gives up after the wait (on the clock) while the holder keeps the lease', async () => {
    await t.lease('kept', 'old-pod:2');
    const clock = new ManualClock();
    const started = clock.now();
    await clock.runUntilSettled(waitForRelease(t.store, 'kept', 1_000, testLog, clock));
    assert.equal(clock.now() - started, 1_000);
    assert.notEqual(await t.store.leaseHolder('kept'), null, 'still held: restore goes on with its newest backup');
  });

  it('returns at once when nobody holds the session', async () => {
    const clock = new ManualClock();
    await waitForRelease(t.store, 'free', 60_000, testLog, clock);
    assert.equal(clock.pending, 0);
  });
});
