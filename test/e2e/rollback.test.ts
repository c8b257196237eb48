// Never backwards (docs/reliability.md): a disk that missed generations (a VM snapshot rolled back, a
// volume restored from an old backup) holds an older valid login. Real Baileys activity makes the
// history; the real CLI restores, backs up, imports and runs the sidecar over the stale copy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ChurnBot } from '../../harness/churn.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { CHURN_BOT } from '../../harness/paths.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const SESSION = 'bot';

describe('never backwards: a stale directory never becomes the head', async () => {
  const url = await freshDatabase('rollback');
  const env = cliEnv(url);
  const head = async (session = SESSION) => {
    const [row] = await query<{ g: string }>(url, 'SELECT head_generation AS g FROM baileys_keeper.sessions WHERE session_id = $1', [
      session,
    ]);
    return Number(row?.g ?? 0);
  };

  // A live bot (Baileys' own writer and Signal repository), each step of its life backed up.
  const live = await tempDir('live');
  const bot = await ChurnBot.open(live, { seed: 24, preKeys: 8 });
  const backup = async () => {
    const result = await runCli(['backup', '--dir', live, '--session', SESSION], { env });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  };
  await bot.burst(12);
  await backup();
  // A stale disk: a copy taken here, before N generations of new contacts, chats, pre-key uploads.
  const staleSource = await tempDir('stale-source');
  await cp(live, staleSource, { recursive: true });
  const staleGeneration = await head();
  for (let i = 0; i < 4; i++) {
    await bot.burst(15);
    await backup();
  }
  // A second stale disk that missed only message exchanges: its creds and pre-keys are the head's.
  const chatsOnlySource = await tempDir('chats-only-source');
  await cp(live, chatsOnlySource, { recursive: true });
  for (let i = 0; i < 3; i++) {
    await bot.chat();
    await backup();
  }
  await bot.close();
  const liveTree = await readTree(live);
  const headGeneration = await head();
  assert.ok(headGeneration >= staleGeneration + 7, `history: ${staleGeneration} → ${headGeneration}`);

  /** A fresh pod's disk holding a copy of `source`. */
  const staleDisk = async (label: string, source = staleSource) => {
    const dir = path.join(await tempDir(label), 'auth_info');
    await cp(source, dir, { recursive: true });
    return dir;
  };

  it('restore puts the head back over a stale login and keeps the stale files aside', async () => {
    const dir = await staleDisk('restore');
    const before = await readTree(dir);
    // The dry run says what the restore will do, and writes nothing.
    const dry = await runCli(['restore', '--dir', dir, '--session', SESSION, '--dry-run'], { env });
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /^stale: .* older than the stored head/m);
    assert.match(dry.stdout, /^write {3}pre-key-\d+\.json$/m);
    assert.deepEqual(await readTree(dir), before, 'the dry run wrote nothing');
    const result = await runCli(['restore', '--dir', dir, '--session', SESSION], { env });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const said = messages(result.stdout);
    assert.match(said, new RegExp(`older than the stored head \\(generation ${headGeneration}\\)`));
    assert.match(said, /nextPreKeyId \d+ < \d+/, 'names the counter that is behind');
    assert.match(said, /"pre-key-\d+\.json" \(deleted in generation \d+\)/, 'names a used pre-key that came back');
    assert.deepEqual(diffTrees(await storedHead(url, SESSION), await readTree(dir)), [], 'the directory is the head again');
    const aside = (await readdir(dir)).filter((name) => name.startsWith('.baileys-keeper-stale-'));
    assert.equal(aside.length, 1, 'one set-aside copy');
    assert.deepEqual(await readTree(path.join(dir, aside[0]!)), before, 'the stale files are kept as they were');
    assert.match(said, new RegExp(`kept in ${path.join(dir, aside[0]!).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // The set-aside copy is not a restore stage: the next restore keeps the (now current) login.
    const again = await runCli(['restore', '--dir', dir, '--session', SESSION], { env });
    assert.equal(again.code, 0);
    assert.match(messages(again.stdout), /already holds a valid creds\.json: nothing to restore/);
    assert.deepEqual(diffTrees(await storedHead(url, SESSION), await readTree(dir)), []);
  });

  it('restore also recognises a disk that missed only message exchanges', async () => {
    const dir = await staleDisk('chats-only', chatsOnlySource);
    const result = await runCli(['restore', '--dir', dir, '--session', SESSION], { env });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const said = messages(result.stdout);
    assert.match(said, /older than the stored head/);
    assert.match(said, /"session-[^"]+\.json" \(replaced in generation \d+\)|it equals the older generation \d+/);
    assert.deepEqual(diffTrees(await storedHead(url, SESSION), await readTree(dir)), []);
  });

  it('backup and import of a stale directory are refused, naming what was found; the head is unchanged', async () => {
    for (const source of [staleSource, chatsOnlySource]) {
      const dir = await staleDisk('backup', source);
      const result = await runCli(['backup', '--dir', dir, '--session', SESSION], { env });
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.match(messages(result.stdout + result.stderr), /refused: the directory is older than the stored head.*--allow-rollback/s);
      assert.equal(await head(), headGeneration);
    }
    const archive = path.join(await tempDir('export'), 'stale.tar');
    const exported = await runCli(['export', '--session', SESSION, '--generation', String(staleGeneration), '--output', archive], { env });
    assert.equal(exported.code, 0, exported.stderr);
    const imported = await runCli(['import', '--session', SESSION, '--input', archive], { env });
    assert.equal(imported.code, 1, imported.stdout + imported.stderr);
    assert.match(messages(imported.stdout + imported.stderr), /older than the stored head.*it equals the older generation/s);
    assert.equal(await head(), headGeneration);
    assert.deepEqual(diffTrees(await storedHead(url, SESSION), liveTree), []);
  });

  it('a sidecar started on a stale directory refuses every backup; the head is unchanged', async () => {
    const dir = await staleDisk('sidecar');
    const service = await startService(['sidecar', '--dir', dir, '--session', SESSION, '--debounce', '100', '--max-delay', '200'], env);
    try {
      await waitFor(async () => ((await service.metric('baileys_keeper_backups_total{result="refused"}')) >= 1 ? true : null), 20_000);
      assert.equal(await service.metric('baileys_keeper_backups_total{result="success"}'), 0);
      assert.ok(service.output.some((line) => /backup refused: the directory is older than the stored head/.test(line)));
    } finally {
      await service.stop();
    }
    assert.equal(await head(), headGeneration);
    assert.deepEqual(diffTrees(await storedHead(url, SESSION), liveTree), []);
  });

  it('--allow-rollback keeps the stale login at restore and stores it as the new head', async () => {
    const dir = await staleDisk('allowed');
    const before = await readTree(dir);
    const kept = await runCli(['restore', '--dir', dir, '--session', SESSION, '--allow-rollback'], { env });
    assert.equal(kept.code, 0);
    assert.match(messages(kept.stdout), /already holds a valid creds\.json: nothing to restore/);
    assert.deepEqual(await readTree(dir), before);
    const stored = await runCli(['backup', '--dir', dir, '--session', SESSION], { env: { ...env, KEEPER_ALLOW_ROLLBACK: '1' } });
    assert.equal(stored.code, 0, stored.stdout + stored.stderr);
    assert.equal(await head(), headGeneration + 1);
    assert.deepEqual(diffTrees(await storedHead(url, SESSION), before), [], 'the stale directory is the head now, as asked');
  });

  it('a live bot churning under the sidecar (restarted mid-way) is never called a rollback', async () => {
    const dir = await tempDir('churn');
    await (await ChurnBot.open(dir, { seed: 31, preKeys: 6 })).close();
    // Short intervals: whole-directory rescans (where the strictest rule applies) happen every second.
    const args = ['sidecar', '--dir', dir, '--session', 'churn', '--debounce', '100', '--max-delay', '300', '--interval', '1000'];
    const churner = spawn(process.execPath, [CHURN_BOT, dir, '--rate', '30', '--seed', '12'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    churner.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    let refused = 0;
    let stored = 0;
    try {
      await waitFor(() => (out.includes('ready') ? true : null), 20_000);
      for (let round = 0; round < 2; round++) {
        // A new process reads the whole directory first, as after a crash or a deploy on a persistent disk.
        const service = await startService(args, env);
        await new Promise((resolve) => setTimeout(resolve, 6000));
        refused += await service.metric('baileys_keeper_backups_total{result="refused"}');
        stored += await service.metric('baileys_keeper_backups_total{result="success"}');
        const lines = service.output.filter((line) => /backup refused/.test(line));
        await service.stop();
        assert.deepEqual(lines, [], 'no refusal logged');
      }
    } finally {
      churner.kill('SIGTERM');
      await new Promise((resolve) => churner.once('exit', resolve));
    }
    const steps = Number(/stopped (\d+)/.exec(out)?.[1] ?? 0);
    assert.ok(steps > 40, `the bot churned (${steps} steps)`);
    assert.ok(stored >= 5, `backups stored during the churn (${stored})`);
    assert.equal(refused, 0, 'zero refusals');
    const [{ n }] = (await query<{ n: string }>(
      url,
      "SELECT count(*) AS n FROM baileys_keeper.generations WHERE session_id = 'churn' AND files_deleted > 0",
    )) as [{ n: string }];
    assert.ok(Number(n) > 0, 'used pre-keys were deleted meanwhile');
  });
});
