// The backup loop's rules about time, on a manual clock over real files and a real PostgreSQL: the
// debounce, max-delay under churn, pairing backed up at once, the lag gauge, a lost lease, a standby
// taking over, a deleted and recreated directory, and the shutdown of a loop whose bot never goes
// quiet. Each is checked on the loop's own clock, to the step, without waiting for any of its timers.
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { RACY_WINDOW_NS } from '../../src/audit.js';
import { DEFAULT_MAX_DELAY_MS } from '../../src/config.js';
import { openDatabase } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { SessionStore } from '../../src/store/index.js';
import { DIR_POLL_MS } from '../../src/watcher.js';
import { openAuth, register, sessionRecord, writeSession, type AuthState } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { testLog } from '../support/log.js';
import { startLoop } from '../support/loop.js';

/** Writes session `name` through Baileys, as a bot does; returns the file it lands in. */
async function writeSessionKey(auth: AuthState, name: string): Promise<string> {
  await auth.state.keys.set({ session: { [name]: sessionRecord() } } as never);
  return `session-${name}.json`;
}

const NEW_JID = '5511900000001:3@s.whatsapp.net';

describe('the backup loop on a manual clock', async () => {
  const url = await freshDatabase('loop');
  // Another process on the same database: the one that takes the lease in the lease tests.
  const otherDb = await openDatabase({ url, schema: 'baileys_keeper', log: testLog });
  after(() => otherDb.close());
  await migrate(otherDb);
  const other = new SessionStore(otherDb);

  /** The generations of a session, oldest first. */
  const generations = async (session: string) =>
    query<{ reason: string }>(url, 'SELECT reason FROM baileys_keeper.generations WHERE session_id = $1 ORDER BY generation', [session]);

  it('backs up one debounce after the last change, not before', async () => {
    const dir = await tempDir('debounce');
    const auth = await writeSession(dir, { preKeys: 3 });
    const loop = await startLoop(url, { dir, sessionId: 'debounce', debounceMs: 300, maxDelayMs: 1000 });
    const before = await loop.backups('success');

    const first = await writeSessionKey(auth, '5511100000001.0');
    await loop.seen(first);
    await loop.advance(200);
    const second = await writeSessionKey(auth, '5511100000002.0');
    await loop.seen(second);
    await loop.advance(299);
    assert.equal(await loop.backups('success'), before, 'each change pushes the quiet period out: 299 ms after the last, nothing');
    assert.ok(!(await storedHead(url, 'debounce')).has(first));

    await loop.advance(1);
    assert.equal(await loop.backups('success'), before + 1, 'one backup, exactly one debounce after the last change');
    assert.deepEqual(diffTrees(await storedHead(url, 'debounce'), await readTree(dir)), []);
  });

  it('backs up every max-delay under constant churn, though the debounce never passes, and ends equal to the dir', async () => {
    const dir = await tempDir('churn');
    const auth = await writeSession(dir, { preKeys: 30 });
    const loop = await startLoop(url, { dir, sessionId: 'churn', debounceMs: 300, maxDelayMs: 1000 });
    const before = await loop.backups('success');
    const started = loop.clock.now();
    const backedUpAt: number[] = [];
    // 3 s of churn, a change every 50 ms: the debounce (300 ms) alone would never fire; max-delay must.
    for (let i = 0; i < 60; i++) {
      const preKeys = { [String(i + 1)]: null, [String(100 + i)]: Curve.generateKeyPair() };
      await auth.state.keys.set({ session: { [`5511${i}.0`]: sessionRecord() }, 'pre-key': preKeys } as never);
      await loop.reported(`session-5511${i}.0.json`);
      const count = await loop.backups('success');
      await loop.advance(50);
      if ((await loop.backups('success')) > count) backedUpAt.push(loop.clock.now() - started);
      assert.ok((await loop.lag()) <= 1, 'no change waits longer than max-delay');
    }
    assert.deepEqual(backedUpAt, [1000, 2000, 3000], 'one backup per max-delay, each max-delay after the oldest unsaved change');
    assert.equal(await loop.backups('success'), before + 3);
    await loop.seen(); // a late second report of the last writes is due one debounce later
    await loop.advance(300);
    assert.equal(await loop.lag(), 0);
    assert.deepEqual(diffTrees(await storedHead(url, 'churn'), await readTree(dir)), []);
  });

  it('backs up at once when creds.json becomes paired, without waiting for the debounce', async () => {
    const dir = await tempDir('pairing');
    const auth = await writeSession(dir, { preKeys: 3, registered: false });
    const loop = await startLoop(url, { dir, sessionId: 'pairing', debounceMs: 30_000, maxDelayMs: 60_000 });
    assert.equal((await loop.metrics.sessionRegistered.get()).values[0]?.value, 0);
    const paired = loop.clock.now();
    await register(auth);
    // Baileys writes creds.json more than once as a pairing goes on: a second write before the backup.
    const creds = path.join(dir, 'creds.json');
    await loop.seen('creds.json');
    await writeFile(creds, await readFile(creds));
    await loop.seen('creds.json');
    // Only what is due now may fire: the clock never moves towards the 30 s debounce.
    await waitFor(async () => {
      await loop.advance(0);
      return (await loop.metrics.sessionRegistered.get()).values[0]?.value === 1 ? true : null;
    }, 10_000);
    assert.equal(loop.clock.now(), paired, 'stored with no time passed on the loop clock');
    const sql = "SELECT registered_jid FROM baileys_keeper.sessions WHERE session_id = 'pairing'";
    const [row] = await query<{ registered_jid: string }>(url, sql);
    assert.match(row!.registered_jid, /^5511987654321/);
    assert.equal(loop.logs.filter((line) => line === 'creds.json was just paired: backing up at once').length, 1, loop.logs.join('\n'));
  });

  it('reports backup lag as the age of the oldest unsaved change, and 0 once stored', async () => {
    const dir = await tempDir('lag');
    const auth = await writeSession(dir, { preKeys: 3 });
    const loop = await startLoop(url, { dir, sessionId: 'lag', debounceMs: 2500, maxDelayMs: 2500 });
    assert.equal(await loop.lag(), 0, 'clean after the initial scan');
    await loop.seen(await writeSessionKey(auth, '5511800000001.0'));
    await loop.advance(1200);
    assert.equal(await loop.lag(), 1.2, 'the age of the change');
    await loop.seen(await writeSessionKey(auth, '5511800000002.0'));
    await loop.advance(1000);
    assert.equal(await loop.lag(), 2.2, 'a newer change does not make the oldest one younger');
    await loop.advance(300);
    assert.equal(await loop.lag(), 0, 'stored at max-delay');
    assert.deepEqual(diffTrees(await storedHead(url, 'lag'), await readTree(dir)), []);
  });

  it("a quiet bot's last success moves on at each audit that finds nothing to store, not while a change waits", async () => {
    const dir = await tempDir('quiet');
    const auth = await writeSession(dir, { preKeys: 3 });
    // Files read within the racy window of their last write prove nothing by metadata (audit.ts): the
    // first audit would read them again. A bot that has been quiet for a while is what this is about.
    await new Promise((resolve) => setTimeout(resolve, Number(RACY_WINDOW_NS / 1_000_000n) + 100));
    const interval = 60_000;
    const loop = await startLoop(url, { dir, sessionId: 'quiet', debounceMs: 5000, maxDelayMs: 5000, intervalMs: interval });
    const lastSuccess = async () => (await loop.metrics.lastBackupSuccess.get()).values[0]?.value ?? NaN;
    const generationsBefore = (await generations('quiet')).length;
    const started = await lastSuccess();
    assert.ok(started > 0, 'set by the first backup');

    // Two audits of a directory nobody writes: the gauge follows the wall clock, no generation is written.
    for (const audits of [1, 2]) {
      await loop.advance(interval);
      const wanted = started + (audits * interval) / 1000;
      await waitFor(async () => {
        await loop.advance(0);
        return (await lastSuccess()) >= wanted ? true : null;
      }, 10_000);
    }
    assert.equal((await generations('quiet')).length, generationsBefore, 'the audits stored nothing');

    // A change waits for its debounce across an audit: not stored yet, so no success.
    const quietUntil = await lastSuccess();
    await loop.advance(interval - 1000);
    await loop.seen(await writeSessionKey(auth, '5511700000001.0'));
    await loop.advance(1000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await loop.advance(0);
    assert.equal(await lastSuccess(), quietUntil, 'an audit while a change waits proves nothing stored');
    await loop.advance(4000);
    assert.ok((await lastSuccess()) > quietUntil, 'the backup at the debounce is a success');
  });

  it('a lease taken over stops the writes at once, and they resume at the first attempt after it is free again', async () => {
    const ttl = 3000; // attempts and renewals every ttl / 3
    const dir = await tempDir('lease-lost');
    const auth = await writeSession(dir, { preKeys: 3 });
    const loop = await startLoop(url, { dir, sessionId: 'lost', debounceMs: 100, maxDelayMs: 500, leaseTtlMs: ttl });
    const stored = await storedHead(url, 'lost');

    // This process stalled past its TTL (the database's clock ran on) and another one took the lease.
    await query(url, "UPDATE baileys_keeper.sessions SET lease_expires_at = now() WHERE session_id = 'lost'");
    const taken = await other.acquireLease('lost', 'other:1', 60_000);
    assert.ok(taken);

    const lost = await writeSessionKey(auth, '5511700000001.0');
    await loop.seen(lost);
    await loop.advance(100);
    assert.equal(loop.sidecar.writerLease, null, 'the fenced-off backup proved the lease lost');
    assert.equal((await loop.metrics.leaseHeld.get()).values[0]?.value, 0);
    assert.deepEqual(await storedHead(url, 'lost'), stored, 'nothing was written without the lease');
    assert.equal(await loop.backups('failure'), 0, 'a lost lease is no failure to retry: the loop stands by');

    // While another process holds it: no backups, however long the changes wait.
    await loop.seen(await writeSessionKey(auth, '5511700000002.0'));
    await loop.advance(ttl / 3);
    assert.equal(loop.sidecar.writerLease, null, 'the next attempt finds the lease held');
    assert.deepEqual(await storedHead(url, 'lost'), stored);

    await other.releaseLease('lost', taken);
    await loop.advance(ttl / 3 - 1);
    assert.equal(loop.sidecar.writerLease, null, 'no attempt between two');
    await loop.advance(1);
    assert.ok(loop.sidecar.writerLease, 'taken at the next attempt');
    assert.deepEqual(diffTrees(await storedHead(url, 'lost'), await readTree(dir)), [], 'and the whole directory stored at once');
  });

  it('a standby takes over a lease its holder stopped renewing at its next attempt, ttl / 3 apart', async () => {
    const ttl = 3000;
    const dir = await tempDir('standby');
    await writeSession(dir, { preKeys: 3 });
    const holder = await other.acquireLease('standby', 'killed:1', 60_000);
    assert.ok(holder);
    const loop = await startLoop(url, { dir, sessionId: 'standby', leaseTtlMs: ttl });
    assert.equal(loop.sidecar.writerLease, null, 'ready as a standby');
    assert.equal((await storedHead(url, 'standby')).size, 0, 'the standby never writes');

    // The holder was SIGKILLed: its lease runs out by the database's clock (the store's tests prove that).
    await query(url, "UPDATE baileys_keeper.sessions SET lease_expires_at = now() WHERE session_id = 'standby'");
    await loop.advance(ttl / 3 - 1);
    assert.equal(loop.sidecar.writerLease, null);
    await loop.advance(1);
    assert.ok(loop.sidecar.writerLease, 'taken over at the next attempt: within ttl / 3 of the expiry');
    assert.deepEqual(diffTrees(await storedHead(url, 'standby'), await readTree(dir)), []);
  });

  it('logout → re-pair: watched again within one poll, its writes stored within max-delay; the lag grows meanwhile', async () => {
    const dir = path.join(await tempDir('repair'), 'auth_info');
    await writeSession(dir, { preKeys: 3 });
    // The CLI's defaults, and a 2-minute --interval: only the watcher can make this fast.
    const loop = await startLoop(url, { dir, sessionId: 'repair' });

    // Logout: Baileys' usual handling deletes the auth directory.
    await rm(dir, { recursive: true });
    await waitFor(
      () => (loop.sidecar.watchBackend === null ? true : null),
      10_000,
      () => 'the removal was not noticed',
    );
    await loop.advance(1000);
    assert.equal(await loop.lag(), 1, 'the lag counts from the removal: nothing is watched, anything written is unsaved');
    assert.ok(loop.sidecar.healthy, 'waiting for the directory to come back is the loop running');
    assert.ok(loop.logs.some((line) => line.includes('the auth directory was removed or replaced')));

    // Re-pair: the real writer makes a new login in a new directory, and the QR is scanned.
    const auth = await openAuth(dir);
    await register(auth, NEW_JID);
    const repaired = loop.clock.now();
    // The watcher looks for the directory every DIR_POLL_MS: move the clock to its next look, and no further.
    await waitFor(
      async () => {
        if (loop.sidecar.watchBackend !== null) return true;
        const next = loop.clock.next();
        if (next !== null && next - loop.clock.now() <= DIR_POLL_MS) await loop.advance(next - loop.clock.now());
        return null;
      },
      10_000,
      () => 'the recreated directory is not watched',
    );
    assert.ok(loop.clock.now() - repaired <= DIR_POLL_MS, 'watched again at the next look for it');
    await loop.advance(0); // the rescan of a directory watched again is due at once
    assert.match((await storedHead(url, 'repair')).get('creds.json') ?? '', new RegExp(NEW_JID), 'the new login is stored');
    assert.equal(await loop.lag(), 0);

    // Plain writes into the recreated directory are seen as well, and stored at max-delay.
    await auth.state.keys.set({ 'pre-key': { '77': { public: Buffer.alloc(32, 1), private: Buffer.alloc(32, 2) } } } as never);
    await loop.seen('pre-key-77.json');
    await loop.advance(DEFAULT_MAX_DELAY_MS);
    assert.deepEqual(diffTrees(await storedHead(url, 'repair'), await readTree(dir)), []);
    assert.equal(await loop.lag(), 0);
  });

  it('stopped while the bot keeps writing: quiet waited for up to half of --shutdown-timeout, then the last change stored', async () => {
    const dir = await tempDir('busystop');
    const auth = await writeSession(dir, { preKeys: 5 });
    const loop = await startLoop(url, { dir, sessionId: 'busystop', shutdownQuietMs: 1000, shutdownTimeoutMs: 6000 });
    // A name written only now, after the last regular backup: the final backup must carry it.
    await auth.state.keys.set({ 'sender-key': { 'last-words': sessionRecord() } } as never);
    await loop.seen('sender-key-last-words.json');
    const stopping = loop.clock.now();
    let stored: boolean | null = null;
    const shutdown = loop.sidecar.shutdown().then((result) => (stored = result));
    // A write every 100 ms: never a quiet second.
    for (let i = 0; loop.clock.now() < stopping + 3000; i++) {
      assert.equal(stored, null, `still waiting for quiet at +${loop.clock.now() - stopping} ms`);
      await loop.reported(await writeSessionKey(auth, `5511600${i}.0`));
      await loop.advance(100);
    }
    // The clock stays here: a quiet wait that did not end at its cap would never let the shutdown finish.
    await waitFor(
      () => stored,
      20_000,
      () => 'the shutdown still waits for quiet at half of --shutdown-timeout',
    );
    assert.equal(await shutdown, true, 'everything stored, the other half of the budget unused');
    assert.equal(loop.clock.now(), stopping + 3000, 'the quiet wait ended at its cap, 3 of the 6 s');
    assert.equal(loop.sidecar.phase, 'stopped');
    assert.ok((await storedHead(url, 'busystop')).has('sender-key-last-words.json'), 'the final backup stored the last change');
    assert.equal((await generations('busystop')).at(-1)?.reason, 'shutdown');
  });
});
