// `npm start` keeps working: the demo pairs, backs up, and on its next start restores instead of pairing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { withoutTestVariables } from '../../harness/cli.js';
import { REPO } from '../../harness/paths.js';
import { tempDir } from '../support/fs.js';
import { waitFor } from '../../harness/sidecar.js';

function startDemo(dir: string, seconds: number) {
  const child = spawn(process.execPath, [path.join(REPO, 'build', 'examples', 'demo.js')], {
    env: {
      ...withoutTestVariables(process.env),
      DEMO_DIR: dir,
      DEMO_SECONDS: String(seconds),
      DEMO_LISTEN: '127.0.0.1:0',
      DATABASE_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = { child, output: '', exited: null as Promise<{ code: number | null; output: string }> | null };
  child.stdout.on('data', (chunk: Buffer) => (run.output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (run.output += chunk.toString()));
  run.exited = new Promise((resolve) => child.once('close', (code) => resolve({ code, output: run.output })));
  return run as typeof run & { exited: Promise<{ code: number | null; output: string }> };
}

function demo(dir: string): Promise<{ code: number | null; output: string }> {
  return startDemo(dir, 4).exited;
}

/** The embedded server's postmaster pid under the demo's data dir, or null. */
async function postmaster(dir: string): Promise<number | null> {
  const text = await readFile(path.join(dir, 'pg', 'pg', 'postmaster.pid'), 'utf8').catch(() => null);
  return text === null ? null : Number(text.split('\n')[0]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the npm start demo', () => {
  it('pairs on the first start and restores the login on the second', async () => {
    const dir = await tempDir('demo');
    await chmod(dir, 0o755);
    const first = await demo(dir);
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /no login: a real bot would show a QR code/);
    assert.match(first.output, /"msg":"backup stored"/);
    assert.match(first.output, /^demo +\d+ +\S+ +\d+ .* yes \(5511\*+\d{4}\)/m);
    const second = await demo(dir);
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /restored generation \d+/);
    assert.match(second.output, /started already paired as 5511\*+\d{4}: no QR code needed/);
  });

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} to the demo alone (a process manager, timeout) ends its embedded PostgreSQL, as Ctrl-C does`, async () => {
      const dir = await tempDir('demo-signal');
      await chmod(dir, 0o755);
      const run = startDemo(dir, 0);
      await waitFor(
        () => (run.output.includes('"msg":"backup stored"') ? true : null),
        60_000,
        () => `the demo never backed up:\n${run.output}`,
        run.exited,
      );
      const pid = await postmaster(dir);
      assert.ok(pid !== null && alive(pid), 'the embedded server runs while the demo does');
      run.child.kill(signal);
      // Before the fix the demo died at once and left the keeper, the bot and PostgreSQL running.
      const ended = await Promise.race([run.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 60_000).unref())]);
      if (ended === null) {
        run.child.kill('SIGKILL');
        assert.fail(`the demo did not end within 60 s of ${signal}:\n${run.output}`);
      }
      const { output } = ended;
      assert.match(output, /the bot's process group has exited: final backup/);
      assert.match(output, /PostgreSQL \(embedded\) stopped/);
      assert.equal(alive(pid), false, `postmaster ${pid} still runs after the demo ended by ${signal}`);
    });
  }
});
