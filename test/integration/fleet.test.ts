// A SessionFleet in this process on a manual clock, over a real PostgreSQL and real session directories
// written by the real Baileys writer: the rules about time and shared work — every lease renewed in one
// statement per third of the TTL, and a tombstone exactly --interval after a directory is seen gone —
// checked to the millisecond. The fleet as a real process is test/e2e/many-sessions.
import assert from 'node:assert/strict';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openAuth, writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { waitFor } from '../../harness/sidecar.js';
import { DEFAULT_MAX_DELAY_MS, DEFAULT_POLL_INTERVAL_MS } from '../../src/config.js';
import { createDatabase } from '../../src/db/pool.js';
import { SessionLoop } from '../../src/loop/session-loop.js';
import { Metrics } from '../../src/metrics.js';
import { type Lease, SessionStore } from '../../src/store/index.js';
import { freshDatabase } from '../support/db.js';
import { FLEET_INTERVAL_MS, FLEET_LOOP_OPTIONS, FLEET_TTL_MS, startFleet as startFleetWith } from '../support/fleet.js';
import { tempDir } from '../support/fs.js';
import { testLog } from '../support/log.js';
import { ManualClock } from '../support/manual-clock.js';

const TTL_MS = FLEET_TTL_MS;
const INTERVAL_MS = FLEET_INTERVAL_MS;
const LOOP_OPTIONS = FLEET_LOOP_OPTIONS;

/** The real store, counting the lease renewal statements it has run (each recorded once it answered). */
class CountingStore extends SessionStore {
  readonly batches: number[] = [];
  singles = 0;
  override async renewLeases(owner: string, leases: readonly { sessionId: string; token: number }[], ttlMs: number) {
    const renewed = await super.renewLeases(owner, leases, ttlMs);
    this.batches.push(renewed.size);
    return renewed;
  }
  override async renewLease(sessionId: string, lease: Lease, ttlMs: number) {
    this.singles++;
    return super.renewLease(sessionId, lease, ttlMs);
  }
}

function startFleet(url: string, names: string[]) {
  return startFleetWith(url, names, { makeStore: (db) => new CountingStore(db) });
}

describe('a fleet of sessions on a manual clock', async () => {
  const url = await freshDatabase('fleet');
  const generations = (session: string) =>
    query<{ reason: string }>(url, 'SELECT reason FROM baileys_keeper.generations WHERE session_id = $1 ORDER BY generation', [session]);

  it('renews every held lease in one statement each third of the TTL, never one by one', async () => {
    const names = ['a', 'b', 'c', 'd', 'e'];
    const { fleet, store, clock } = await startFleet(url, names);
    assert.deepEqual(fleet.sessionIds(), ['f-a', 'f-b', 'f-c', 'f-d', 'f-e']);
    assert.deepEqual(store.batches, []);
    await clock.advance(TTL_MS / 3 - 1);
    assert.deepEqual(store.batches, [], 'not before a third of the TTL');
    await clock.advance(1);
    await waitFor(
      () => (store.batches.length === 1 ? true : null),
      5_000,
      () => `renewals: [${store.batches}] at ${clock.now()}, next timer ${clock.next()}`,
    );
    assert.deepEqual(store.batches, [5], 'one statement for the five leases');
    await clock.advance(TTL_MS / 3);
    await waitFor(
      () => (store.batches.length === 2 ? true : null),
      5_000,
      () => `renewals: [${store.batches}] at ${clock.now()}, next timer ${clock.next()}`,
    );
    assert.deepEqual(store.batches, [5, 5]);
    assert.equal(store.singles, 0, 'no lease was renewed on its own');
    // The renewals really extended them: well past the first TTL, every session still has its writer.
    await clock.advance(TTL_MS / 3);
    await waitFor(
      () => (store.batches.length === 3 ? true : null),
      5_000,
      () => `renewals: [${store.batches}] at ${clock.now()}, next timer ${clock.next()}`,
    );
    const live = await query<{ n: string }>(
      url,
      `SELECT count(*) AS n FROM baileys_keeper.sessions WHERE session_id LIKE 'f-%' AND lease_expires_at > now()`,
    );
    assert.equal(Number(live[0]!.n), 5);
  });

  it('records nothing as removed while the sessions directory itself is gone (an unmounted volume)', async () => {
    const { fleet, clock, sessionsDir } = await startFleet(url, ['kept', 'other']);
    // The entries go first, then the parent (as `rm -rf sessions` does): each child was seen missing.
    await rm(path.join(sessionsDir, 'kept'), { recursive: true });
    await waitFor(
      () => (fleet.missing.size === 1 ? true : null),
      10_000,
      () => 'the removal was not seen',
    );
    const away = `${sessionsDir}-unmounted`;
    await rename(sessionsDir, away);
    await waitFor(
      () => (fleet.healthy ? null : true),
      10_000,
      () => 'the missing sessions directory did not show in /healthz',
    );
    await clock.advance(INTERVAL_MS * 3);
    await new Promise((resolve) => setTimeout(resolve, 300)); // a tombstone write, if one started, has landed
    assert.ok(!(await generations('f-kept')).some((g) => g.reason === 'removed'), 'no tombstone while the parent is gone');
    assert.deepEqual(fleet.sessionIds(), ['f-kept', 'f-other']);
    await rename(away, sessionsDir);
  });

  it('a session whose directory cannot be watched does not hold up the start (its first attempt is enough)', async () => {
    const root = await tempDir('fleet-stall');
    const db = createDatabase({ url, schema: 'baileys_keeper', log: testLog });
    after(() => db.close());
    const clock = new ManualClock();
    const metrics = new Metrics();
    const sidecar = new SessionLoop(
      new SessionStore(db),
      {
        sessionId: 'f-stalled',
        dir: path.join(root, 'not-there'),
        owner: 'stall-test',
        ...LOOP_OPTIONS,
      },
      metrics,
      testLog,
      clock,
    );
    let watching = false;
    void sidecar.start().then(() => (watching = true));
    await sidecar.attempted();
    assert.equal(watching, false, 'start() waits for watching');
    assert.equal(sidecar.watchStalled, true);
    assert.equal(sidecar.ready, false);
    await clock.runUntilSettled(sidecar.shutdown(0));
  });

  it('tombstones a directory gone for --interval, not one that came back, and stops keeping it', async () => {
    const { fleet, clock, sessionsDir, metrics } = await startFleet(url, ['gone', 'back', 'stays']);
    await rm(path.join(sessionsDir, 'gone'), { recursive: true });
    await rename(path.join(sessionsDir, 'back'), path.join(sessionsDir, '.away'));
    // The watcher reports both (real time); the clock stands still, so both are seen gone at this instant.
    await waitFor(
      () => (fleet.missing.size === 2 ? true : null),
      10_000,
      () => `missing: ${[...fleet.missing.keys()].join(', ')}`,
    );
    const seenAt = clock.now();
    assert.deepEqual([...fleet.missing.values()], [seenAt, seenAt]);
    await rename(path.join(sessionsDir, '.away'), path.join(sessionsDir, 'back'));
    await waitFor(
      () => (fleet.missing.size === 1 ? true : null),
      10_000,
      () => `back again: missing ${[...fleet.missing.keys()]}`,
    );

    await clock.advance(INTERVAL_MS - 1);
    assert.ok(!(await generations('f-gone')).some((g) => g.reason === 'removed'), 'not before --interval');
    assert.deepEqual(fleet.sessionIds(), ['f-back', 'f-gone', 'f-stays']);
    await clock.advance(1);
    await waitFor(
      async () => ((await generations('f-gone')).at(-1)?.reason === 'removed' ? true : null),
      10_000,
      () => 'no tombstone for f-gone',
    );
    await waitFor(
      () => (fleet.sessionIds().length === 2 ? true : null),
      10_000,
      () => `still kept: ${fleet.sessionIds()}`,
    );
    assert.deepEqual(fleet.sessionIds(), ['f-back', 'f-stays']);
    assert.ok(!(await generations('f-back')).some((g) => g.reason === 'removed'), 'back within --interval: a re-pair, no tombstone');
    const series = (await metrics.registry.getSingleMetricAsString('baileys_keeper_generation')).split('\n');
    assert.ok(!series.some((line) => line.includes('session="f-gone"')), 'its series are gone with it');
    assert.equal((await metrics.sessions!.get()).values[0]!.value, 2);

    // The same name again, later: a new login, kept over the tombstone.
    await mkdir(path.join(sessionsDir, 'gone'));
    await writeSession(path.join(sessionsDir, 'gone'), { preKeys: 1 });
    await waitFor(
      () => (fleet.loopFor('f-gone') ? true : null),
      10_000,
      () => 'the recreated directory was not picked up',
    );
    await waitFor(
      async () => {
        await clock.advance(1_000);
        return (await generations('f-gone')).at(-1)?.reason !== 'removed' ? true : null;
      },
      20_000,
      () => 'the recreated session was not stored over its tombstone',
    );
  });

  it('a folder named unlike a session id joins one poll interval after its first creds.json, and its name is stored', async () => {
    const { fleet, clock, sessionsDir } = await startFleet(url, ['plain', 'João']);
    assert.deepEqual(fleet.sessionIds(), ['f-.Jo_C3_A3o', 'f-plain']);
    // A folder with no login: no session, however long it waits.
    const customer = path.join(sessionsDir, 'new customer');
    await mkdir(customer);
    await mkdir(path.join(sessionsDir, 'lost+found'));
    await clock.advance(DEFAULT_POLL_INTERVAL_MS * 3);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await clock.advance(DEFAULT_POLL_INTERVAL_MS * 3);
    assert.deepEqual(fleet.sessionIds(), ['f-.Jo_C3_A3o', 'f-plain']);

    // Its first login: no event of the parent says so; the next look, one poll interval on, does.
    await (await openAuth(customer)).saveCreds();
    await clock.advance(DEFAULT_POLL_INTERVAL_MS);
    await waitFor(
      async () => {
        await clock.advance(0);
        return fleet.loopFor('f-.new_20customer') ? true : null;
      },
      10_000,
      () => `not a session yet: ${fleet.sessionIds().join(' ')}`,
    );
    await waitFor(
      async () => {
        await clock.advance(DEFAULT_MAX_DELAY_MS);
        const rows = await query<{ session_id: string; folder: string | null }>(
          url,
          "SELECT session_id, folder FROM baileys_keeper.sessions WHERE session_id IN ('f-.Jo_C3_A3o', 'f-.new_20customer', 'f-plain') ORDER BY 1",
        );
        return rows.length === 3 ? rows : null;
      },
      10_000,
      () => 'the sessions were not stored',
    ).then((rows) =>
      assert.deepEqual(rows, [
        { session_id: 'f-.Jo_C3_A3o', folder: 'João' },
        { session_id: 'f-.new_20customer', folder: 'new customer' },
        { session_id: 'f-plain', folder: null },
      ]),
    );
    assert.ok(!fleet.sessionIds().some((id) => id.includes('lost')));
  });
});
