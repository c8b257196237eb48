// Two keepers of many sessions over one sessions directory, in this process on manual clocks, over a real
// PostgreSQL: the one standing by tries all the leases it waits for in ONE statement each third of the TTL
// (counted from the statements the server is sent), and takes every session when the writer releases
// them (a stop) or stops renewing them (a crash: its leases expire) — never a live lease.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { waitFor } from '../../harness/sidecar.js';
import { createDatabase } from '../../src/db/pool.js';
import { SessionFleet } from '../../src/fleet.js';
import { Metrics } from '../../src/metrics.js';
import { SessionStore } from '../../src/store/index.js';
import { freshDatabase } from '../support/db.js';
import { FLEET_LOOP_OPTIONS, FLEET_TTL_MS } from '../support/fleet.js';
import { tempDir } from '../support/fs.js';
import { testLog } from '../support/log.js';
import { ManualClock } from '../support/manual-clock.js';
import { recording } from '../support/recording-db.js';

const TTL_MS = FLEET_TTL_MS;
const SESSIONS = 12;
/** The test fleets' loop settings, with an audit too rare to happen in these tests. */
const LOOP_OPTIONS = { ...FLEET_LOOP_OPTIONS, intervalMs: 600_000 };

/** A lease acquisition statement, for one session or many (acquireLease, acquireLeases). */
const acquires = (text: string) => /SET lease_owner = \$2, lease_token = (s\.)?lease_token \+ 1/.test(text);
/** A look-up of who holds one session's lease (what a standby keeper did after each failed attempt). */
const readsOneSession = (text: string) => /^\s*SELECT[\s\S]*\bFROM\s+\S+\.sessions s WHERE s\.session_id = \$1/i.test(text);

async function sessionsDir(label: string): Promise<string> {
  const dir = await tempDir(label);
  for (let i = 0; i < SESSIONS; i++) await writeSession(path.join(dir, `s${i}`), { preKeys: 1, sessions: 1 });
  return dir;
}

/** A fleet over `dir` (sessions `label-…`) owned by `label-role` on `clock`; `sent` records every statement it sends. */
function keeper(url: string, dir: string, label: string, role: string, clock: ManualClock, sent: string[] = []) {
  const db = createDatabase({ url, schema: 'baileys_keeper', log: testLog, maxConnections: 4 });
  const fleet = new SessionFleet(
    new SessionStore(recording(db, sent)),
    { sessionsDir: dir, prefix: `${label}-`, tombstoneAfterMs: LOOP_OPTIONS.intervalMs, owner: `${label}-${role}`, ...LOOP_OPTIONS },
    new Metrics(undefined, { manySessions: true }),
    testLog,
    clock,
  );
  after(() => db.close());
  return { fleet, sent, clock };
}

type Keeper = ReturnType<typeof keeper>;

const writers = (k: Keeper) => k.fleet.sessionIds().filter((id) => k.fleet.loopFor(id)?.writerLease);

/** Moves `k`'s clock by `ms` (its timers' work ending at their instant) and lets real I/O (watch events) land. */
async function advance(k: Keeper, ms: number): Promise<void> {
  await k.clock.advance(ms);
  await k.fleet.whenIdle();
}

async function until(k: Keeper, what: string, ok: () => boolean): Promise<void> {
  await waitFor(
    async () => {
      await advance(k, 0);
      return ok() ? true : null;
    },
    20_000,
    () => `${what}: ${writers(k).length} of ${k.fleet.size} written at ${k.clock.now()}; ${k.fleet.problems.join('; ')}`,
  );
}

/** `first` holds every session, `second` (on its own clock) stands by for all of them. */
async function writerAndStandby(url: string, label: string) {
  const dir = await sessionsDir(label);
  const first = keeper(url, dir, label, 'first', new ManualClock());
  first.clock.settle = () => first.fleet.whenIdle();
  await first.fleet.start();
  await until(first, 'the first keeper holds every lease', () => first.fleet.size === SESSIONS && writers(first).length === SESSIONS);
  const second = keeper(url, dir, label, 'second', new ManualClock());
  second.clock.settle = () => second.fleet.whenIdle();
  after(() => second.clock.runUntilSettled(second.fleet.shutdown(0)));
  await second.fleet.start();
  await until(second, 'the second keeper is ready, standing by', () => second.fleet.size === SESSIONS && second.fleet.ready);
  assert.deepEqual(writers(second), [], 'the second keeper took no live lease');
  return { first, second };
}

describe('a keeper standing by for many sessions', async () => {
  const url = await freshDatabase('fleet-standby');
  /** Each session's lease token, by session id, among those `owner` holds. */
  const tokens = async (owner: string) =>
    new Map(
      (
        await query<{ session_id: string; lease_token: string }>(
          url,
          'SELECT session_id, lease_token FROM baileys_keeper.sessions WHERE lease_owner = $1',
          [owner],
        )
      ).map((row) => [row.session_id, Number(row.lease_token)]),
    );

  it('tries every waiting lease in one statement per third of the TTL, and takes them all once released', async () => {
    const { first, second } = await writerAndStandby(url, 'released');
    second.sent.length = 0;
    for (let period = 1; period <= 3; period++) {
      await advance(second, TTL_MS / 3);
      // The first keeper renews meanwhile (the database's clock says its leases are live anyway).
      await advance(first, TTL_MS / 3);
    }
    assert.equal(second.sent.filter(acquires).length, 3, `one acquisition statement per period for ${SESSIONS} sessions`);
    assert.equal(second.sent.filter(readsOneSession).length, 0, 'no look-up of each holder');
    assert.deepEqual(writers(second), [], 'no live lease taken');
    const before = await tokens('released-first');
    assert.equal(before.size, SESSIONS);

    await first.clock.runUntilSettled(first.fleet.shutdown(0));
    // A release cut short by the stop's deadline lands a moment later (or its lease expires): wait for them.
    await waitFor(
      async () => ((await tokens('released-first')).size === 0 ? true : null),
      10_000,
      () => 'the stopped keeper did not release its leases',
    );
    second.sent.length = 0;
    await advance(second, TTL_MS / 3);
    assert.equal(writers(second).length, SESSIONS, 'every session taken at the next attempt after the release');
    assert.equal(second.sent.filter(acquires).length, 1, 'in one statement');
    const taken = await tokens('released-second');
    assert.equal(taken.size, SESSIONS);
    for (const [session, token] of taken) assert.equal(token, before.get(session)! + 1, `${session}: a new token`);
  });

  it('takes every session of a keeper that died once its leases expire, within a third of the TTL', async () => {
    const { first, second } = await writerAndStandby(url, 'died');
    const firstOwner = 'died-first';
    const held = await tokens(firstOwner);
    assert.equal(held.size, SESSIONS);
    // The first keeper dies: its clock stops, nothing of it runs any more. Its leases are live for a while.
    await advance(second, TTL_MS / 3);
    assert.deepEqual(writers(second), [], 'a live lease of a dead keeper is not taken before it expires');
    // The TTL passes for the database: the leases the dead keeper last renewed run out.
    await query(url, `UPDATE baileys_keeper.sessions SET lease_expires_at = now() WHERE lease_owner = $1`, [firstOwner]);
    second.sent.length = 0;
    await advance(second, TTL_MS / 3);
    assert.equal(writers(second).length, SESSIONS, 'every session taken within a third of the TTL of its expiry');
    assert.equal(second.sent.filter(acquires).length, 1, 'in one statement');
    const taken = await tokens('died-second');
    assert.equal(taken.size, SESSIONS);
    for (const [session, token] of taken) assert.equal(token, held.get(session)! + 1, `${session}: fenced by a new token`);
    // What is left of the dead keeper (its watchers) is closed; it has nothing to release.
    await first.clock.runUntilSettled(first.fleet.shutdown(0));
    assert.equal(writers(second).length, SESSIONS);
  });
});
