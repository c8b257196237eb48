// The session lifecycle in the store (SPEC "Session lifecycle", the guard of "What is backed up"): a logout the
// keeper saw is stored as one, what it did not see stays guarded, another login over a paired one is refused,
// a re-pairing ends the logout — on directories written by the real Baileys useMultiFileAuthState.
import assert from 'node:assert/strict';
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RefusedError } from '../../src/errors.js';
import { sessionStatusJson } from '../../src/session-status.js';
import { readSnapshot } from '../../src/snapshot.js';
import type { BackupResult, LoginSeen } from '../../src/store/index.js';
import { openAuth, register, REGISTERED_JID, writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { testStore } from '../support/store.js';

const OTHER_JID = '5511912341526:3@s.whatsapp.net';

describe('session lifecycle in the store', async () => {
  const t = await testStore('lifecycle');

  async function backup(
    sessionId: string,
    dir: string,
    options: { login?: LoginSeen; allowReplace?: boolean } = {},
  ): Promise<BackupResult> {
    const lease = await t.lease(sessionId);
    try {
      return await t.store.backup(sessionId, await readSnapshot(dir), {
        lease,
        reason: 'test',
        allowReplace: options.allowReplace ?? false,
        login: options.login ?? null,
      });
    } finally {
      await t.store.releaseLease(sessionId, lease);
    }
  }

  async function stateOf(sessionId: string) {
    const summary = await t.store.summary(sessionId);
    const json = sessionStatusJson(summary!);
    return { state: json.state, loggedOut: json.logged_out_at !== null, generation: json.generation };
  }

  async function headReason(sessionId: string): Promise<string> {
    const [row] = await query<{ reason: string }>(
      t.url,
      'SELECT g.reason FROM baileys_keeper.generations g JOIN baileys_keeper.sessions s USING (session_id) WHERE s.session_id = $1 AND g.generation = s.head_generation',
      [sessionId],
    );
    return row!.reason;
  }

  /** A stored, paired session and its directory. */
  async function paired(sessionId: string): Promise<string> {
    const dir = await tempDir(sessionId);
    await writeSession(dir, { preKeys: 4 });
    const first = await backup(sessionId, dir);
    assert.equal(first.kind === 'success' && first.event, 'paired');
    return dir;
  }

  it('a first pairing is stored as the paired event; an unpaired directory is unpaired', async () => {
    const dir = await tempDir('unpaired');
    await writeSession(dir, { registered: false, preKeys: 2 });
    const stored = await backup('unpaired', dir);
    assert.equal(stored.kind === 'success' && stored.event, null);
    assert.deepEqual(await stateOf('unpaired'), { state: 'unpaired', loggedOut: false, generation: 1 });
    await register(await openAuth(dir));
    const pairedNow = await backup('unpaired', dir);
    assert.equal(pairedNow.kind === 'success' && pairedNow.event, 'paired');
    assert.equal((await stateOf('unpaired')).state, 'paired');
  });

  it('the bot wiping its folder while watched is a logout generation, not a refusal', async () => {
    const dir = await paired('wiped');
    await rm(dir, { recursive: true });
    // The bot starts unpaired: real Baileys writes fresh, unregistered creds.
    await (await openAuth(dir)).saveCreds();
    const result = await backup('wiped', dir, { login: 'seen' });
    assert.equal(result.kind, 'success');
    assert.equal(result.kind === 'success' && result.event, 'logged_out');
    assert.equal(await headReason('wiped'), 'logout');
    assert.deepEqual(await stateOf('wiped'), { state: 'logged_out', loggedOut: true, generation: 2 });
    // The history keeps the login.
    const before = await t.store.loadPoint('wiped', { generation: 1 });
    assert.ok(before!.files.some((file) => file.name === 'creds.json'));
  });

  it('deleting only creds.json while watched is a logout too', async () => {
    const dir = await paired('creds-only');
    await rm(path.join(dir, 'creds.json'));
    const result = await backup('creds-only', dir, { login: 'seen' });
    assert.equal(result.kind === 'success' && result.event, 'logged_out');
    assert.equal((await stateOf('creds-only')).state, 'logged_out');
  });

  it('what the keeper did not see stays guarded: unpaired creds over a paired login are refused, the login intact', async () => {
    const dir = await paired('unseen');
    const empty = await tempDir('unseen-empty');
    await (await openAuth(empty)).saveCreds();
    const result = await backup('unseen', empty);
    assert.equal(result.kind, 'refused');
    assert.equal(result.kind === 'refused' && result.refusal, 'unregistered');
    assert.deepEqual(await stateOf('unseen'), { state: 'paired', loggedOut: false, generation: 1 });
    assert.equal((await backup('unseen', dir)).kind, 'noop');
  });

  it('another account over a paired session is refused naming both masked numbers; --allow-replace stores it', async () => {
    await paired('swap');
    const other = await tempDir('swap-other');
    const auth = await writeSession(other, { registered: false, preKeys: 3 });
    await register(auth, OTHER_JID);
    const refused = await backup('swap', other);
    assert.equal(refused.kind, 'refused');
    assert.equal(refused.kind === 'refused' && refused.refusal, 'identity');
    const reason = refused.kind === 'refused' ? refused.reason : '';
    assert.match(reason, /5511\*+4321/);
    assert.match(reason, /5511\*+1526/);
    assert.doesNotMatch(reason, /987654321|912341526/, 'full numbers are never printed');
    // Even with loginSeen: another login is not a logout.
    assert.equal((await backup('swap', other, { login: 'seen' })).kind, 'refused');
    const replaced = await backup('swap', other, { allowReplace: true });
    assert.equal(replaced.kind === 'success' && replaced.event, 'paired');
  });

  it('the same login with a new identity key (a new pairing of the same number) is another login', async () => {
    await paired('re-scan');
    const fresh = await tempDir('re-scan-fresh');
    await register(await openAuth(fresh), REGISTERED_JID);
    const result = await backup('re-scan', fresh);
    assert.equal(result.kind === 'refused' && result.refusal, 'identity');
  });

  it('the same device id with new keys in the watched directory (creds lost at a crash, paired again) is a re-pairing', async () => {
    await paired('same-device');
    const fresh = await tempDir('same-device-fresh');
    await register(await openAuth(fresh), REGISTERED_JID);
    // Unseen it is another login (the guard's case); watched, the device paired again.
    assert.equal((await backup('same-device', fresh)).kind, 'refused');
    const result = await backup('same-device', fresh, { login: 'seen' });
    assert.equal(result.kind === 'success' && result.event, 'repaired');
  });

  it('a new login after the keeper saw the old one leave is a re-pairing, stored without --allow-replace', async () => {
    const dir = await paired('dropped');
    await rm(dir, { recursive: true });
    await register(await openAuth(dir), OTHER_JID);
    const result = await backup('dropped', dir, { login: 'dropped' });
    assert.equal(result.kind === 'success' && result.event, 'repaired');
    assert.equal((await stateOf('dropped')).state, 'paired');
  });

  it("unpaired creds refused unseen, then paired by a QR scan, are a re-pairing; another bot's login is not", async () => {
    const dir = await paired('pending');
    await rm(dir, { recursive: true });
    await (await openAuth(dir)).saveCreds();
    assert.equal((await backup('pending', dir)).kind, 'refused', 'the guard keeps the stored login');
    // Meanwhile another bot's paired login is still refused.
    const other = await tempDir('pending-other');
    await register(await openAuth(other), OTHER_JID);
    const swap = await backup('pending', other);
    assert.equal(swap.kind === 'refused' && swap.refusal, 'identity');
    // The QR is scanned on the refused creds: Baileys keeps their identity key.
    await register(await openAuth(dir), OTHER_JID);
    const result = await backup('pending', dir);
    assert.equal(result.kind === 'success' && result.event, 'repaired');
    // The pending pairing is used up: yet another login is refused again.
    const third = await tempDir('pending-third');
    await register(await openAuth(third), REGISTERED_JID);
    assert.equal((await backup('pending', third)).kind, 'refused');
  });

  it('re-pairing after a logout the keeper saw is repaired; that login itself coming back undoes the logout', async () => {
    const dir = await paired('repair');
    const dead = await tempDir('repair-dead');
    await copyFile(path.join(dir, 'creds.json'), path.join(dead, 'creds.json'));
    await rm(path.join(dir, 'creds.json'));
    assert.equal((await backup('repair', dir, { login: 'seen' })).kind, 'success');
    // A guess must not lose a working login: the same login back in the directory ends the logout.
    const back = await backup('repair', dead);
    assert.equal(back.kind === 'success' && back.event, 'repaired');
    assert.equal((await stateOf('repair')).state, 'paired');
    // A new pairing after a logout is repaired too.
    await rm(path.join(dead, 'creds.json'));
    assert.equal((await backup('repair', dead, { login: 'seen' })).kind, 'success');
    const auth = await openAuth(dir);
    await register(auth);
    const repaired = await backup('repair', dir);
    assert.equal(repaired.kind === 'success' && repaired.event, 'repaired');
    assert.deepEqual(await stateOf('repair'), { state: 'paired', loggedOut: false, generation: 5 });
  });

  it('a directory replaced as a whole: unpaired creds are a logout, no creds are not, another login is a re-pairing', async () => {
    const dir = await paired('replaced');
    const empty = await tempDir('replaced-empty');
    // A remount half done: the mount point is there, empty. No logout; the guard keeps the login.
    const half = await backup('replaced', empty, { login: 'replaced' });
    assert.equal(half.kind === 'refused' && half.refusal, 'unregistered');
    assert.equal((await stateOf('replaced')).state, 'paired');
    assert.equal((await backup('replaced', dir, { login: 'replaced' })).kind, 'noop', 'the same login back: nothing to do');
    // The bot started again, unpaired: a logout.
    const fresh = await tempDir('replaced-fresh');
    await (await openAuth(fresh)).saveCreds();
    const out = await backup('replaced', fresh, { login: 'replaced' });
    assert.equal(out.kind === 'success' && out.event, 'logged_out');
  });

  it('logout by hand deletes the head, keeps the history, is idempotent, and refuses an unpaired session', async () => {
    const byHandDir = await paired('by-hand');
    const lease = await t.lease('by-hand');
    try {
      const first = await t.store.logout('by-hand', lease);
      assert.deepEqual({ ...first, deleted: first.deleted > 0 }, { generation: 2, deleted: true, written: true });
      assert.deepEqual(await t.store.logout('by-hand', lease), { generation: 2, deleted: 0, written: false });
    } finally {
      await t.store.releaseLease('by-hand', lease);
    }
    assert.equal(await headReason('by-hand'), 'logout');
    assert.equal((await stateOf('by-hand')).state, 'logged_out');
    assert.ok((await t.store.loadPoint('by-hand', { generation: 1 }))!.files.length > 0);
    // The login the operator discarded does not come back by itself.
    const kept = await tempDir('by-hand-kept');
    await copyFile(path.join(byHandDir, 'creds.json'), path.join(kept, 'creds.json'));
    const refused = await backup('by-hand', kept);
    assert.equal(refused.kind === 'refused' && refused.refusal, 'logged_out_login');
    assert.equal(await t.store.revive('by-hand'), true);
    assert.equal((await stateOf('by-hand')).state, 'unpaired');

    const unpairedDir = await tempDir('by-hand-unpaired');
    await writeSession(unpairedDir, { registered: false, preKeys: 1 });
    await backup('by-hand-unpaired', unpairedDir);
    const other = await t.lease('by-hand-unpaired');
    await assert.rejects(t.store.logout('by-hand-unpaired', other), RefusedError);
    await t.store.releaseLease('by-hand-unpaired', other);
  });
});
