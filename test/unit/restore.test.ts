import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rename, rmdir, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { materialise, planRestore, recoverInterruptedRestore, RestoreWriteError, stageRestore, STAGING_PREFIX } from '../../src/restore.js';
import { IntegrityError } from '../../src/errors.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { testLog } from '../support/log.js';

const files = (names: string[], tag: string) => names.map((name) => ({ name, content: Buffer.from(`{"${tag}":"${name}"}`) }));

describe('atomic restore', () => {
  it('replaces exactly the backed-up files and leaves dotfiles and sub-directories alone', async () => {
    const dir = await tempDir('restore');
    await writeFile(path.join(dir, 'stale-key.json'), '{}');
    await writeFile(path.join(dir, '.keep'), 'mine');
    await mkdir(path.join(dir, 'media'));
    await materialise(dir, files(['creds.json', 'pre-key-1.json'], 'new'), testLog);
    assert.deepEqual([...(await readTree(dir)).keys()].sort(), ['creds.json', 'pre-key-1.json']);
    assert.deepEqual((await readdir(dir)).sort(), ['.keep', 'creds.json', 'media', 'pre-key-1.json']);
  });

  it('finishes a committed restore that died half-way through moving files', async () => {
    const dir = await tempDir('restore');
    await materialise(dir, files(['creds.json', 'pre-key-1.json', 'pre-key-2.json'], 'old'), testLog);
    const wanted = files(['creds.json', 'pre-key-2.json', 'pre-key-3.json', 'session-1.json'], 'new');
    const stage = await stageRestore(dir, wanted);
    // Simulate a kill after two files were moved in: a mixed directory with the old creds.json.
    await rename(path.join(stage, 'pre-key-3.json'), path.join(dir, 'pre-key-3.json'));
    await rename(path.join(stage, 'pre-key-2.json'), path.join(dir, 'pre-key-2.json'));
    assert.equal(await recoverInterruptedRestore(dir, testLog), 'rolled-forward');
    assert.deepEqual(await readTree(dir), new Map(wanted.map((f) => [f.name, f.content.toString()])));
    assert.equal(
      (await readdir(dir)).some((name) => name.startsWith(STAGING_PREFIX)),
      false,
    );
  });

  it('discards a stage that was never committed, leaving the previous files', async () => {
    const dir = await tempDir('restore');
    await materialise(dir, files(['creds.json', 'pre-key-1.json'], 'old'), testLog);
    const before = await readTree(dir);
    const stage = path.join(dir, `${STAGING_PREFIX}deadbeef`);
    await mkdir(stage);
    await writeFile(path.join(stage, 'creds.json'), '{"half":');
    await writeFile(path.join(stage, '.manifest.tmp'), '{"files":["creds.json"]}');
    assert.equal(await recoverInterruptedRestore(dir, testLog), 'discarded');
    assert.deepEqual(await readTree(dir), before);
    assert.deepEqual((await readdir(dir)).sort(), ['creds.json', 'pre-key-1.json']);
  });

  it('refuses an unsafe name before writing anything', async () => {
    const dir = path.join(await tempDir('restore'), 'auth_info');
    await assert.rejects(
      materialise(dir, [...files(['creds.json'], 'x'), { name: '../escape.json', content: Buffer.from('{}') }], testLog),
      IntegrityError,
    );
    await assert.rejects(readdir(dir), /ENOENT/);
  });

  it('refuses before staging when a name is taken by a directory, FIFO or symlink: previous files and nothing else', async () => {
    for (const [kind, make] of [
      ['a directory', (file: string) => mkdir(file)],
      ['a FIFO (named pipe)', async (file: string) => execFileSync('mkfifo', [file])],
      ['a symbolic link', (file: string) => symlink('/dev/zero', file)],
    ] as const) {
      const dir = await tempDir('restore');
      await materialise(dir, files(['creds.json'], 'old'), testLog);
      await make(path.join(dir, 'pre-key-1.json'));
      const before = (await readdir(dir)).sort();
      await assert.rejects(
        materialise(dir, files(['creds.json', 'pre-key-1.json'], 'new'), testLog),
        (error: unknown) =>
          error instanceof RestoreWriteError &&
          error.message.includes(`${path.join(dir, 'pre-key-1.json')} is ${kind}`) &&
          /Nothing was written/.test(error.message),
      );
      assert.deepEqual((await readdir(dir)).sort(), before, `${kind}: no stage left`);
      assert.equal((await readTree(dir)).get('creds.json'), '{"old":"creds.json"}');
    }
  });

  it('a committed stage blocked by a directory names it and the stage, and finishes once it is removed', async () => {
    const dir = await tempDir('restore');
    const wanted = files(['creds.json', 'pre-key-1.json'], 'new');
    const stage = await stageRestore(dir, wanted);
    await mkdir(path.join(dir, 'pre-key-1.json'));
    for (let attempt = 0; attempt < 2; attempt++)
      await assert.rejects(recoverInterruptedRestore(dir, testLog), (error: unknown) => {
        assert.ok(error instanceof RestoreWriteError, String(error));
        assert.match(error.message, /cannot be finished: .*pre-key-1\.json is a directory/);
        assert.ok(error.message.includes(`remove ${stage}`));
        return true;
      });
    await rmdir(path.join(dir, 'pre-key-1.json'));
    assert.equal(await recoverInterruptedRestore(dir, testLog), 'rolled-forward');
    assert.deepEqual(await readTree(dir), new Map(wanted.map((f) => [f.name, f.content.toString()])));
  });

  it('plans from regular files only: a FIFO, a link to /dev/zero and a directory are blocked, never read', async () => {
    const dir = await tempDir('plan');
    execFileSync('mkfifo', [path.join(dir, 'pre-key-1.json')]);
    await symlink('/dev/zero', path.join(dir, 'pre-key-2.json'));
    await mkdir(path.join(dir, 'pre-key-3.json'));
    await writeFile(path.join(dir, 'pre-key-4.json'), '{"new":"pre-key-4.json"}');
    await writeFile(path.join(dir, 'session-9.json'), '{}');
    const plan = await planRestore(
      dir,
      files(['creds.json', 'pre-key-1.json', 'pre-key-2.json', 'pre-key-3.json', 'pre-key-4.json'], 'new'),
    );
    assert.deepEqual(plan, {
      write: ['creds.json'],
      unchanged: ['pre-key-4.json'],
      remove: ['session-9.json'],
      blocked: [
        { name: 'pre-key-1.json', kind: 'a FIFO (named pipe)' },
        { name: 'pre-key-2.json', kind: 'a symbolic link' },
        { name: 'pre-key-3.json', kind: 'a directory' },
      ],
    });
  });

  it('reports a read-only filesystem clearly and keeps the previous files', { skip: mountSkip() }, async () => {
    const dir = await tmpfs('64k');
    await materialise(dir, files(['creds.json'], 'old'), testLog);
    execFileSync('mount', ['-o', 'remount,ro', dir]);
    await assert.rejects(
      materialise(dir, files(['creds.json', 'pre-key-9.json'], 'new'), testLog),
      /EROFS.*read-only.*previous files were left/,
    );
    assert.deepEqual(await readTree(dir), new Map([['creds.json', '{"old":"creds.json"}']]));
  });

  it('reports a full filesystem clearly, cleans up its stage and keeps the previous files', { skip: mountSkip() }, async () => {
    const dir = await tmpfs('64k');
    await materialise(dir, files(['creds.json'], 'old'), testLog);
    const big = Array.from({ length: 40 }, (_, i) => ({
      name: `session-${i}.json`,
      content: Buffer.from(JSON.stringify({ pad: 'x'.repeat(4000) })),
    }));
    await assert.rejects(materialise(dir, [...files(['creds.json'], 'new'), ...big], testLog), /ENOSPC.*full.*previous files were left/);
    assert.deepEqual(await readTree(dir), new Map([['creds.json', '{"old":"creds.json"}']]));
    assert.deepEqual(await readdir(dir), ['creds.json'], 'no stage left behind');
  });
});

/** Real small filesystems need root (mount); elsewhere these cases are covered by the fault suite. */
function mountSkip(): string | false {
  return process.getuid?.() === 0 ? false : 'needs root to mount a tmpfs';
}

async function tmpfs(size: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bk-mnt-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  after(async () => {
    execFileSync('umount', ['-l', dir]);
    await rmdir(dir);
  });
  return dir;
}
