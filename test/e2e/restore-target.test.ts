// Restore into a directory where a stored file's name is taken by something that is not a regular file
// (a directory, FIFO, socket, symlink): refused before the commit point, dry runs that neither block nor
// read without end, and a committed stage that cannot be finished never wedging later starts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { readTree } from '../../harness/fs.js';
import { startService, waitFor } from '../../harness/sidecar.js';
import { STAGING_PREFIX, stageRestore } from '../../src/restore.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

/** Everything directly in `dir`, names only, hidden ones included (a stage left behind shows here). */
const entries = async (dir: string) => (await readdir(dir)).sort();

/** Puts `kind` at dir/name and returns a function that removes it. */
async function obstruct(dir: string, name: string, kind: 'directory' | 'fifo' | 'socket' | 'symlink'): Promise<() => Promise<void>> {
  const target = path.join(dir, name);
  if (kind === 'directory') {
    await mkdir(target);
    await writeFile(path.join(target, 'inside'), 'kept');
    return () => rm(target, { recursive: true });
  }
  if (kind === 'fifo') {
    execFileSync('mkfifo', [target]);
    return () => unlink(target);
  }
  if (kind === 'socket') {
    const server = net.createServer().listen(target);
    await new Promise((resolve) => server.once('listening', resolve));
    after(() => server.close());
    return () => new Promise<void>((resolve) => server.close(() => resolve()));
  }
  const elsewhere = path.join(await tempDir('elsewhere'), name);
  await writeFile(elsewhere, '{"not":"restored"}');
  await symlink(elsewhere, target);
  return () => unlink(target);
}

describe('restore target checks', async () => {
  const url = await freshDatabase('restore_target');
  const env = cliEnv(url);
  const bot = await tempDir('bot');
  await writeSession(bot, { preKeys: 4 });
  assert.equal((await runCli(['backup', '--dir', bot, '--session', 'main'], { env })).code, 0);
  const stored = await readTree(bot);

  for (const kind of ['directory', 'fifo', 'socket', 'symlink'] as const) {
    it(`restore --force refuses a ${kind} where a stored file goes: exit 1, entry named, old files intact, no stage`, async () => {
      const dir = await tempDir(`force-${kind}`);
      await writeSession(dir, { preKeys: 1 });
      await unlink(path.join(dir, 'pre-key-1.json'));
      await obstruct(dir, 'pre-key-1.json', kind);
      const before = await readTree(dir);
      const listed = await entries(dir);
      const result = await runCli(['restore', '--dir', dir, '--session', 'main', '--force'], { env });
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const said = messages(result.stdout);
      assert.match(said, new RegExp(`${path.join(dir, 'pre-key-1.json')} is a`));
      assert.match(said, /Remove or rename it, then restore again\. Nothing was written/);
      assert.doesNotMatch(said, /unexpected error/);
      assert.deepEqual(await readTree(dir), before, 'the previous files are intact');
      assert.deepEqual(await entries(dir), listed, 'no stage or other entry left behind');
    });
  }

  it('restores once the entry in the way is removed', async () => {
    const dir = await tempDir('cleared');
    const clear = await obstruct(dir, 'creds.json', 'directory');
    assert.equal((await runCli(['restore', '--dir', dir, '--session', 'main'], { env })).code, 1);
    await clear();
    const result = await runCli(['restore', '--dir', dir, '--session', 'main'], { env });
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(await readTree(dir), stored);
  });

  it('--dry-run neither blocks on a FIFO nor reads a link to /dev/zero, and reports a directory in the way', async () => {
    const dir = await tempDir('dry');
    execFileSync('mkfifo', [path.join(dir, 'pre-key-1.json')]);
    await symlink('/dev/zero', path.join(dir, 'pre-key-2.json'));
    await mkdir(path.join(dir, 'pre-key-3.json'));
    await writeFile(path.join(dir, 'pre-key-4.json'), stored.get('pre-key-4.json')!);
    const result = await runCli(['restore', '--dir', dir, '--session', 'main', '--dry-run'], { env, timeoutMs: 20_000 });
    assert.equal(result.code, 1, 'a dry run fails as the real run would');
    assert.match(result.stdout, /^blocked pre-key-1\.json \(a FIFO \(named pipe\) is in the way\)$/m);
    assert.match(result.stdout, /^blocked pre-key-2\.json \(a symbolic link is in the way\)$/m);
    assert.match(result.stdout, /^blocked pre-key-3\.json \(a directory is in the way\)$/m);
    assert.doesNotMatch(result.stdout, /^write {3}pre-key-4\.json$/m, 'a regular file equal to the stored one is unchanged');
    assert.match(result.stdout, /^write {3}creds\.json$/m);
    assert.match(result.stdout, new RegExp(`${stored.size - 4} to write, 1 unchanged, 0 to remove, 3 blocked`));
    const json = await runCli(['restore', '--dir', dir, '--session', 'main', '--dry-run', '--json'], { env, timeoutMs: 20_000 });
    assert.equal(json.code, 1);
    // The plan (indented JSON), then the refusal logged on the same stream.
    const plan = JSON.parse(/^\{\n[\s\S]*?\n\}$/m.exec(json.stdout)![0]);
    assert.deepEqual(
      plan.blocked.map((entry: { name: string }) => entry.name),
      ['pre-key-1.json', 'pre-key-2.json', 'pre-key-3.json'],
    );
    assert.deepEqual(plan.unchanged, ['pre-key-4.json']);
  });

  describe('a committed stage that cannot be finished', () => {
    /** A directory as a restore killed half-way leaves it, with a directory in the way of a staged file. */
    async function wedged(label: string): Promise<{ dir: string; stage: string; clear: () => Promise<void> }> {
      const dir = await tempDir(label);
      await writeSession(dir, { preKeys: 1, registered: true });
      const stage = await stageRestore(
        dir,
        [...stored].map(([name, content]) => ({ name, content: Buffer.from(content) })),
      );
      const clear = await obstruct(dir, 'pre-key-3.json', 'directory');
      return { dir, stage, clear };
    }

    it('restore says what is in the way and which paths to remove, then finishes once it is removed', async () => {
      const { dir, stage, clear } = await wedged('wedged-restore');
      for (const args of [[], ['--force']]) {
        const result = await runCli(['restore', '--dir', dir, '--session', 'main', ...args], { env });
        assert.equal(result.code, 1, result.stdout);
        const said = messages(result.stdout);
        assert.doesNotMatch(said, /unexpected error|already holds a valid creds/);
        assert.match(
          said,
          new RegExp(`interrupted restore in ${dir} cannot be finished: ${path.join(dir, 'pre-key-3.json')} is a directory`),
        );
        assert.match(said, new RegExp(`Or remove ${stage} to give the restore up`));
      }
      await clear();
      const result = await runCli(['restore', '--dir', dir, '--session', 'main'], { env });
      assert.equal(result.code, 0, result.stdout);
      assert.match(result.stdout, /finished a restore that was interrupted/);
      assert.deepEqual(await readTree(dir), stored);
      assert.equal(
        (await entries(dir)).some((name) => name.startsWith(STAGING_PREFIX)),
        false,
      );
    });

    it('a sidecar start reports it plainly (not ready, no backup of the mixed directory) and proceeds once it is removed', async () => {
      const { dir, clear } = await wedged('wedged-sidecar');
      const service = await startService(['sidecar', '--dir', dir, '--session', 'wedged', '--debounce', '100'], env);
      try {
        await waitFor(
          () =>
            service.output.some((line) => /interrupted restore .* cannot be finished: .*pre-key-3\.json is a directory/.test(line))
              ? true
              : null,
          15_000,
          () => service.output.join('\n'),
        );
        assert.equal(
          service.output.some((line) => /unexpected error/.test(line)),
          false,
        );
        assert.equal((await service.get('/healthz')).status, 503);
        assert.equal(await service.metric('baileys_keeper_generation'), 0, 'the half-restored directory is not backed up');
        await clear();
        await waitFor(
          async () => ((await service.get('/healthz')).status === 200 ? true : null),
          30_000,
          () => service.output.join('\n'),
        );
        await waitFor(async () => ((await service.metric('baileys_keeper_generation')) >= 1 ? true : null), 15_000);
        assert.deepEqual(await readTree(dir), stored, 'the interrupted restore was finished before the first backup');
      } finally {
        await service.stop();
      }
    });
  });
});
