// Trying many sessions' leases in one statement, on a real PostgreSQL: fenced exactly as one session's
// acquisition (a new token each time, never a live lease of another owner, ours taken again), rows of new
// sessions created, the holder of the others named, a row locked by a writer's backup skipped rather than
// waited for; and a keeper stopped while its batch is in flight gives back the lease the batch took.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { query } from '../../harness/db.js';
import { waitFor } from '../../harness/sidecar.js';
import { LeaseAttempts } from '../../src/lease-attempts.js';
import { LeaseKeeper } from '../../src/lease.js';
import { testLog } from '../support/log.js';
import { ManualClock } from '../support/manual-clock.js';
import { testStore } from '../support/store.js';

const TTL_MS = 30_000;

describe('lease attempts for many sessions in one statement', async () => {
  const t = await testStore('lease-attempts');
  const row = async (sessionId: string) =>
    (
      await query<{ lease_owner: string | null; lease_token: string; live: boolean }>(
        t.url,
        'SELECT lease_owner, lease_token, lease_expires_at > now() AS live FROM baileys_keeper.sessions WHERE session_id = $1',
        [sessionId],
      )
    )[0];

  it('takes free, expired, released and own leases with a new token, never a live one of another owner', async () => {
    const other = await t.lease('la-live', 'other:1');
    const expired = await t.lease('la-expired', 'other:1');
    await query(t.url, "UPDATE baileys_keeper.sessions SET lease_expires_at = now() - interval '1 second' WHERE session_id = 'la-expired'");
    const released = await t.lease('la-released', 'other:1');
    await t.store.releaseLease('la-released', released);
    const ours = await t.lease('la-ours', 'me:1');
    const outcomes = await t.store.acquireLeases(['la-live', 'la-expired', 'la-released', 'la-ours', 'la-new'], 'me:1', TTL_MS);
    const by = new Map(outcomes.map((outcome) => [outcome.sessionId, outcome]));
    assert.equal(by.size, 5, 'one answer per session');
    assert.deepEqual(by.get('la-live'), { sessionId: 'la-live', holder: 'other:1' });
    assert.equal((await row('la-live'))!.lease_owner, 'other:1', 'a live lease is not taken');
    assert.equal(Number((await row('la-live'))!.lease_token), other.token, 'nor its token moved');
    const token = (id: string) => {
      const outcome = by.get(id)!;
      assert.ok('lease' in outcome, `${id} taken`);
      assert.equal(outcome.lease.owner, 'me:1');
      return outcome.lease.token;
    };
    assert.equal(token('la-expired'), expired.token + 1);
    assert.equal(token('la-released'), released.token + 1);
    assert.equal(token('la-ours'), ours.token + 1, 'our own lease taken again is fenced too');
    assert.equal(token('la-new'), 1, 'a session not stored yet gets its row and its first lease');
    for (const id of ['la-expired', 'la-released', 'la-ours', 'la-new']) {
      const stored = (await row(id))!;
      assert.equal(stored.lease_owner, 'me:1');
      assert.equal(stored.live, true);
      assert.equal(Number(stored.lease_token), token(id));
    }
    // The old writer of the expired lease is fenced off: its renewal fails.
    assert.equal(await t.store.renewLease('la-expired', expired, TTL_MS), null);
  });

  it('skips a row the writer has locked (a backup in flight) instead of waiting for it; it is tried next time', async () => {
    await t.lease('la-locked', 'other:1');
    await query(t.url, "UPDATE baileys_keeper.sessions SET lease_expires_at = now() WHERE session_id = 'la-locked'");
    await t.lease('la-free-too', 'other:1');
    await query(t.url, "UPDATE baileys_keeper.sessions SET lease_expires_at = now() WHERE session_id = 'la-free-too'");
    // A writer's backup transaction holds the row (fence.ts locks it) while the batch runs.
    let locked!: () => void;
    let commit!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const committing = new Promise<void>((resolve) => (commit = resolve));
    const writer = t.db.transaction(async (tx) => {
      await tx.query(`SELECT 1 FROM ${tx.schema}.sessions WHERE session_id = 'la-locked' FOR UPDATE`);
      locked();
      await committing;
    });
    await isLocked;
    const outcomes = await t.store.acquireLeases(['la-locked', 'la-free-too'], 'me:1', TTL_MS);
    commit();
    await writer;
    const by = new Map(outcomes.map((outcome) => [outcome.sessionId, outcome]));
    assert.ok('holder' in by.get('la-locked')!, 'the locked row is not taken now');
    assert.ok('lease' in by.get('la-free-too')!, 'the others are');
    const again = await t.store.acquireLeases(['la-locked'], 'me:1', TTL_MS);
    assert.ok('lease' in again[0]!, 'taken once the lock is gone');
  });

  it('a keeper stopped while its batch is in flight releases what the batch took', async () => {
    const clock = new ManualClock();
    const attempts = new LeaseAttempts(t.store, 'me:2', TTL_MS, clock);
    const heard: string[] = [];
    const keeper = new LeaseKeeper(
      t.store,
      'la-stopping',
      'me:2',
      TTL_MS,
      clock,
      testLog,
      {
        acquired: () => heard.push('acquired'),
        lost: () => heard.push('lost'),
        standby: () => heard.push('standby'),
        databaseError: () => heard.push('error'),
      },
      null,
      attempts,
    );
    // The batch statement is held up by a lock on the table until the keeper has been asked to stop.
    let locked!: () => void;
    let commit!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const committing = new Promise<void>((resolve) => (commit = resolve));
    const blocker = t.db.transaction(async (tx) => {
      await tx.query(`LOCK TABLE ${tx.schema}.sessions IN EXCLUSIVE MODE`);
      locked();
      await committing;
    });
    await isLocked;
    keeper.start(); // joins a prompt batch
    await waitFor(
      async () => {
        const waiting = await query<{ n: string }>(
          t.url,
          "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%lease_token + 1%'",
        );
        return Number(waiting[0]!.n) > 0 ? true : null;
      },
      10_000,
      () => 'the batch statement never reached the server',
    );
    const releasing = keeper.release();
    commit();
    await blocker;
    await releasing;
    assert.equal(keeper.current, null);
    const stored = await row('la-stopping');
    assert.equal(stored?.lease_owner ?? null, null, 'no lease left behind to expire by itself');
    assert.deepEqual(heard, []);
    attempts.stop();
  });
});
