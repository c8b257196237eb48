import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { LeaseLostError, NothingToRestoreError } from '../../src/errors.js';
import { parseRetention } from '../../src/store/retention.js';
import { readSnapshot } from '../../src/snapshot.js';
import { openAuth, register, writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { testStore } from '../support/store.js';

const fast = { retryDelaysMs: [1, 1] };

describe('session store', async () => {
  const t = await testStore('store');

  async function backupDir(sessionId: string, dir: string, extra: { keep?: number; allowReplace?: boolean } = {}) {
    const lease = await t.lease(sessionId);
    try {
      const result = await t.store.backup(sessionId, await readSnapshot(dir, fast), {
        lease,
        allowReplace: extra.allowReplace ?? false,
        reason: 'test',
      });
      // Count-only retention (the schedule "none") over the newest `keep`, as the writers apply it after a backup.
      if (extra.keep !== undefined) await t.store.thin(sessionId, parseRetention('none', extra.keep));
      return result;
    } finally {
      await t.store.releaseLease(sessionId, lease);
    }
  }

  async function rowsByGeneration(sessionId: string) {
    const [inserted] = await query<{ n: string }>(t.url, 'SELECT count(*) AS n FROM baileys_keeper.files WHERE session_id = $1', [
      sessionId,
    ]);
    return Number(inserted!.n);
  }

  it('numbers generations by one and writes nothing for an unchanged directory', async () => {
    const dir = await tempDir('gen');
    await writeSession(dir, { preKeys: 10 });
    const first = await backupDir('gen', dir);
    assert.equal(first.kind, 'success');
    assert.equal(first.generation, 1);
    const rowsBefore = await rowsByGeneration('gen');
    const again = await backupDir('gen', dir);
    assert.deepEqual(again, { kind: 'noop', generation: 1 });
    assert.equal(await rowsByGeneration('gen'), rowsBefore);
    assert.equal((await t.store.history('gen')).length, 1);

    const auth = await openAuth(dir);
    await auth.state.keys.set({ 'pre-key': { '11': Curve.generateKeyPair() } });
    const second = await backupDir('gen', dir);
    assert.equal(second.kind, 'success');
    assert.equal(second.generation, 2);
  });

  it('writes O(1) rows for one changed key in a 5,000-file session', async () => {
    const dir = await tempDir('big');
    const auth = await writeSession(dir, { preKeys: 4990, sessions: 5, senderKeys: 2, appStateKeys: 2 });
    const first = await backupDir('big', dir);
    assert.ok(first.kind === 'success' && first.totalFiles === 5000, JSON.stringify(first));

    await auth.state.keys.set({ 'pre-key': { '17': Curve.generateKeyPair() } });
    const second = await backupDir('big', dir);
    assert.ok(second.kind === 'success');
    assert.equal(second.changed, 1);
    assert.equal(second.deleted, 0);
    assert.equal(second.totalFiles, 5000);
    const [counts] = await query<{ written: string; closed: string; total: string }>(
      t.url,
      `SELECT count(*) FILTER (WHERE generation_from = 2) AS written, count(*) FILTER (WHERE generation_to = 2) AS closed, count(*) AS total
         FROM baileys_keeper.files WHERE session_id = 'big'`,
    );
    assert.deepEqual(counts, { written: '1', closed: '1', total: '5001' });
  });

  it('records deletions, keeps them deleted in later generations, and keeps torn files as stored', async () => {
    const dir = await tempDir('del');
    const auth = await writeSession(dir, { preKeys: 5 });
    await backupDir('del', dir);
    await auth.state.keys.set({ 'pre-key': { '1': null, '2': null } });
    const goodCreds = await readFile(path.join(dir, 'creds.json'));
    await writeFile(path.join(dir, 'creds.json'), ''); // torn: must not be stored, nor count as deleted
    const result = await backupDir('del', dir);
    assert.ok(result.kind === 'success');
    assert.equal(result.deleted, 2);
    assert.equal(result.changed, 0);
    const head = (await t.store.loadPoint('del', { generation: result.generation }))!.files;
    const names = head.map((file) => file.name);
    assert.ok(!names.includes('pre-key-1.json') && !names.includes('pre-key-2.json'));
    assert.deepEqual(head.find((file) => file.name === 'creds.json')?.content, goodCreds);
    assert.ok(
      (await t.store.loadPoint('del', { generation: 1 }))!.files.some((file) => file.name === 'pre-key-1.json'),
      'generation 1 still has it',
    );
  });

  it('restores any retained generation by number or time, before and after pruning', async () => {
    const dir = await tempDir('pit');
    const auth = await writeSession(dir, { preKeys: 3 });
    const states: { generation: number; at: Date; files: Map<string, string> }[] = [];
    for (let i = 0; i < 6; i++) {
      await auth.state.keys.set({ session: { [`5511000000${i}.0`]: Buffer.from(`record ${i}`) } });
      if (i % 2 === 1) await auth.state.keys.set({ 'pre-key': { [String(i)]: null } });
      const result = await backupDir('pit', dir);
      assert.ok(result.kind === 'success');
      const snapshot = await readSnapshot(dir, fast);
      states.push({
        generation: result.generation,
        at: new Date(),
        files: new Map([...snapshot.files].map(([name, file]) => [name, file.content.toString()])),
      });
      await new Promise((resolve) => setTimeout(resolve, 5)); // distinct created_at per generation
    }
    const contentAt = async (generation: number) =>
      new Map((await t.store.loadPoint('pit', { generation }))!.files.map((file) => [file.name, file.content.toString()]));
    for (const state of states) assert.deepEqual(await contentAt(state.generation), state.files, `generation ${state.generation}`);
    const byTime = await t.store.loadPoint('pit', { at: states[2]!.at });
    assert.equal(byTime?.generation.generation, states[2]!.generation);

    // keep 3: generations 5..7 stay (the 7th is a new backup), 1..4 are pruned.
    await auth.state.keys.set({ session: { '55119999.0': Buffer.from('last') } });
    const pruning = await backupDir('pit', dir, { keep: 3 });
    assert.ok(pruning.kind === 'success' && pruning.generation === 7);
    assert.deepEqual(
      (await t.store.history('pit')).map((g) => g.generation),
      [7, 6, 5],
    );
    for (const state of states.filter((s) => s.generation >= 5)) assert.deepEqual(await contentAt(state.generation), state.files);
    await assert.rejects(
      t.store.loadPoint('pit', { generation: 2 }),
      (error: unknown) => error instanceof NothingToRestoreError && /retained generations are 5\.\.7/.test(error.message),
    );
    await assert.rejects(t.store.loadPoint('pit', { at: states[0]!.at }), NothingToRestoreError);
    const [{ n }] = (await query<{ n: string }>(
      t.url,
      "SELECT count(*) AS n FROM baileys_keeper.files WHERE session_id = 'pit' AND generation_to <= 5",
    )) as [{ n: string }];
    assert.equal(n, '0', 'versions only pruned generations could see are gone');

    // keep 1 never prunes the head.
    await auth.state.keys.set({ session: { '55118888.0': Buffer.from('x') } });
    const only = await backupDir('pit', dir, { keep: 1 });
    assert.deepEqual(
      (await t.store.history('pit')).map((g) => g.generation),
      [only.generation],
    );
    assert.ok((await t.store.loadPoint('pit', { generation: only.generation }))!.files.length > 0);
  });

  it('refuses a generation whose stored rows do not add up to its file count', async () => {
    const dir = await tempDir('partial');
    await writeSession(dir, { preKeys: 3 });
    const result = await backupDir('partial', dir);
    await query(t.url, "DELETE FROM baileys_keeper.files WHERE session_id = 'partial' AND name = 'pre-key-2.json'");
    await assert.rejects(t.store.loadPoint('partial', { generation: result.generation }), /should have \d+ files but \d+ are stored/);
  });

  it('refuses to replace a registered session with unregistered creds unless allowed', async () => {
    const dir = await tempDir('guard');
    await writeSession(dir, { preKeys: 3, registered: true });
    await backupDir('guard', dir);
    // A bot restarted on an empty dir creates fresh, unpaired creds and drops the old keys.
    await rm(dir, { recursive: true });
    await writeSession(dir, { preKeys: 3, registered: false });
    const refused = await backupDir('guard', dir);
    assert.equal(refused.kind, 'refused');
    assert.match((refused as { reason: string }).reason, /registered to 5511\*+4321/);
    assert.equal((await t.store.history('guard')).length, 1, 'nothing was written');

    // Once the new creds are paired (QR scanned), they are backed up.
    await register(await openAuth(dir), '5511000000000:3@s.whatsapp.net');
    assert.equal((await backupDir('guard', dir)).kind, 'success');

    // And --allow-replace overrides the guard.
    await rm(dir, { recursive: true });
    await writeSession(dir, { preKeys: 1, registered: false });
    assert.equal((await backupDir('guard', dir, { allowReplace: true })).kind, 'success');
  });

  it('fences off a writer whose lease was taken over', async () => {
    const dir = await tempDir('fence');
    await writeSession(dir, { preKeys: 2 });
    const a = await t.lease('fence', 'host-a:1', 100);
    assert.equal(await t.store.acquireLease('fence', 'host-b:2', 100), null, 'a live lease is not shared');
    await new Promise((resolve) => setTimeout(resolve, 150)); // let it expire by the database clock
    const b = await t.lease('fence', 'host-b:2', 60_000);
    assert.ok(b.token > a.token, 'every acquisition raises the fencing token');
    const snapshot = await readSnapshot(dir, fast);
    await assert.rejects(t.store.backup('fence', snapshot, { lease: a, allowReplace: false, reason: 'stale' }), LeaseLostError);
    assert.deepEqual(await t.store.history('fence'), [], 'the stale writer committed nothing');
    assert.equal((await t.store.backup('fence', snapshot, { lease: b, allowReplace: false, reason: 'fresh' })).kind, 'success');
    assert.equal(await t.store.renewLease('fence', a, 1000), null, 'the old holder cannot renew');
    assert.equal(await t.store.releaseLease('fence', a), false, 'nor release the new holder');
    assert.ok(await t.store.releaseLease('fence', b));
  });
});
