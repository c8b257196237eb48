// A restore SIGKILLed at any instant never leaves a partial directory: what the next keeper start sees
// (after it finishes a committed restore) is exactly the previous files or exactly the new ones.
import assert from 'node:assert/strict';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { STAGING_PREFIX } from '../../src/restore.js';
import { sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv, collect, runCli, startCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';

const RUNS_PER_CASE = 12;

function sameTree(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([name, content]) => b.get(name) === content);
}

async function committedStages(dir: string): Promise<number> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  let committed = 0;
  for (const entry of entries.filter((name) => name.startsWith(STAGING_PREFIX))) {
    if ((await readdir(path.join(dir, entry))).includes('.manifest')) committed++;
  }
  return committed;
}

describe('restore killed with SIGKILL at random instants', async () => {
  const env = cliEnv(await freshDatabase('kill'));
  const bot = await tempDir('bot');
  const auth = await writeSession(bot, { preKeys: 300, sessions: 40 });
  assert.equal((await runCli(['backup', '--dir', bot], { env })).code, 0);
  const oldState = await readTree(bot);
  const retire: Record<string, null> = {};
  const fresh: Record<string, unknown> = {};
  for (let i = 1; i <= 150; i++) retire[String(i)] = null;
  for (let i = 301; i <= 450; i++) fresh[String(i)] = Curve.generateKeyPair();
  await auth.state.keys.set({ 'pre-key': { ...retire, ...fresh } as never, session: { '5511000000001.0': sessionRecord() } });
  auth.state.creds.nextPreKeyId = 451;
  await auth.saveCreds();
  assert.equal((await runCli(['backup', '--dir', bot], { env })).code, 0);
  const newState = await readTree(bot);

  // How long a whole restore takes here, so the kill instants cover all of it.
  const probeDir = path.join(await tempDir('probe'), 'auth_info');
  const started = Date.now();
  assert.equal((await runCli(['restore', '--dir', probeDir], { env })).code, 0);
  const fullMs = Date.now() - started;

  async function killAt(dir: string, args: string[], delayMs: number): Promise<void> {
    const child = startCli(['restore', '--dir', dir, ...args], { env });
    const done = collect(child);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    child.kill('SIGKILL');
    await done;
  }

  /** Stratified random instants: run i is killed somewhere in the i-th slice of the restore. */
  const instant = (i: number) => ((i + Math.random()) / RUNS_PER_CASE) * fullMs * 1.1;

  it(`over an existing directory (--force), ${RUNS_PER_CASE} runs`, async () => {
    const seen = { old: 0, new: 0, pending: 0 };
    for (let i = 0; i < RUNS_PER_CASE; i++) {
      const dir = path.join(await tempDir(`force-${i}`), 'auth_info');
      assert.equal((await runCli(['restore', '--dir', dir, '--generation', '1'], { env })).code, 0);
      assert.ok(sameTree(await readTree(dir), oldState));
      await killAt(dir, ['--force'], instant(i));

      const visible = await readTree(dir);
      const pending = await committedStages(dir);
      if (sameTree(visible, oldState)) seen.old++;
      else if (sameTree(visible, newState)) seen.new++;
      else {
        seen.pending++;
        assert.equal(pending, 1, `run ${i}: a mixed directory only exists while a committed restore is pending`);
        assert.equal(visible.get('creds.json'), oldState.get('creds.json'), `run ${i}: creds.json moves last`);
      }
      // The next start (here: a plain restore) finishes a committed restore before anything else.
      assert.equal((await runCli(['restore', '--dir', dir], { env })).code, 0);
      const after = await readTree(dir);
      if (pending > 0) assert.ok(sameTree(after, newState), `run ${i}: a committed restore is finished`);
      else assert.ok(sameTree(after, oldState) || sameTree(after, newState), `run ${i}: old or new, nothing in between`);
      assert.equal((await readdir(dir)).filter((name) => name.startsWith(STAGING_PREFIX)).length, 0, `run ${i}: no stage left behind`);
    }
    assert.ok(seen.old + seen.new + seen.pending === RUNS_PER_CASE);
  });

  it(`into an empty directory (the init container), ${RUNS_PER_CASE} runs`, async () => {
    for (let i = 0; i < RUNS_PER_CASE; i++) {
      const dir = path.join(await tempDir(`empty-${i}`), 'auth_info');
      await killAt(dir, [], instant(i));
      const visible = await readTree(dir).catch(() => new Map<string, string>());
      if (visible.has('creds.json')) assert.ok(sameTree(visible, newState), `run ${i}: creds.json appears only with the complete set`);
      assert.equal((await runCli(['restore', '--dir', dir], { env })).code, 0);
      assert.ok(sameTree(await readTree(dir), newState), `run ${i}: the next restore completes it`);
      await rm(path.dirname(dir), { recursive: true, force: true });
      await mkdir(path.dirname(dir), { recursive: true });
    }
  });
});
