// A reader that goes away early (`export | head -c 10`, `history | head -1`): the command ends quietly with
// 128 + SIGPIPE, as git and tar do in a shell, after finishing what it does; never a stack trace.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { CLI } from '../../harness/paths.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

/** `baileys-keeper ARGS | READER` in bash, with real pipes; the keeper's exit status and stderr. */
async function piped(
  args: string[],
  reader: string,
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<{ code: number; stderr: string; read: number }> {
  const script = `"$0" "$@" 2>keeper.err | ${reader} | wc -c >read.count; echo "\${PIPESTATUS[0]}"`;
  const { stdout } = await promisify(execFile)('bash', ['-c', script, process.execPath, CLI, ...args], { env, cwd });
  const [stderr, read] = await Promise.all(
    ['keeper.err', 'read.count'].map((name) => promisify(execFile)('cat', [path.join(cwd, name)]).then((out) => out.stdout)),
  );
  return { code: Number(stdout.trim()), stderr: stderr!, read: Number(read!.trim()) };
}

describe('a closed stdout', async () => {
  const url = await freshDatabase('closed-stdout');
  const env = cliEnv(url);
  const bot = await tempDir('bot');
  // Larger than a pipe's buffer (64 KiB), so the export is still being written when head goes away.
  await writeSession(bot, { preKeys: 300 });
  assert.equal((await runCli(['backup', '--dir', bot, '--session', 'big'], { env })).code, 0);

  const quiet = (stderr: string) => {
    assert.doesNotMatch(stderr, /EPIPE|Error:|\n\s+at /, 'no error and no stack trace');
  };

  it('export | head -c 10: exit 141, quietly, and nothing written anywhere else', async () => {
    const cwd = await tempDir('export-head');
    const result = await piped(['export', '--session', 'big'], 'head -c 10', env, cwd);
    assert.equal(result.code, 141, result.stderr);
    assert.equal(result.read, 10);
    quiet(result.stderr);
    assert.deepEqual((await readdir(cwd)).sort(), ['keeper.err', 'read.count']);
  });

  it('status --json, history and verify into a reader that has gone: exit 141, quietly', async () => {
    for (const args of [
      ['status', '--json'],
      ['history', '--session', 'big'],
      ['verify', '--session', 'big'],
      ['export', '--session', 'big'],
    ]) {
      const result = await piped(args, 'true', env, await tempDir('gone'));
      assert.equal(result.code, 141, `${args.join(' ')}: ${result.stderr}`);
      quiet(result.stderr);
    }
  });

  it('a command that writes finishes its work before it ends: backup stores its generation, restore writes the directory', async () => {
    await writeSession(bot, { preKeys: 301 });
    const backup = await piped(['backup', '--dir', bot, '--session', 'big'], 'true', env, await tempDir('backup'));
    assert.equal(backup.code, 141, backup.stderr);
    quiet(backup.stderr);
    const [head] = await query<{ generation: string }>(
      url,
      "SELECT max(generation) AS generation FROM baileys_keeper.generations WHERE session_id = 'big'",
    );
    assert.equal(Number(head!.generation), 2, 'the backup was stored');
    // The roles log to stdout: their logs are dropped, their work and exit code stay.
    const dir = path.join(await tempDir('restore'), 'auth_info');
    const restore = await piped(['restore', '--dir', dir, '--session', 'big'], 'true', env, await tempDir('restore-run'));
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(await readTree(dir), await readTree(bot));
    const dryRun = await piped(['restore', '--dir', dir, '--session', 'big', '--dry-run', '--force'], 'true', env, await tempDir('dry'));
    assert.equal(dryRun.code, 141, dryRun.stderr);
  });

  it('a closed stderr loses the message, not the exit code: a usage error stays 64', async () => {
    const script = `"$0" "$@" 2>&1 | true; echo "\${PIPESTATUS[0]}"`;
    const result = await promisify(execFile)('bash', ['-c', script, process.execPath, CLI, 'status', '--no-such-flag'], { env });
    assert.equal(result.stdout.trim(), '64');
  });

  it('another write error (a full disk) is exit 1, said once', async () => {
    const result = await promisify(execFile)(
      'bash',
      ['-c', `"$0" "$@" >/dev/full; echo "$?"`, process.execPath, CLI, 'export', '--session', 'big'],
      {
        env,
      },
    );
    assert.equal(result.stdout.trim(), '1');
    assert.match(result.stderr, /cannot write the output to stdout \(ENOSPC/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});
