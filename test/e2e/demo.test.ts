// `npm start` keeps working: the demo pairs, backs up, and on its next start restores instead of pairing.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { withoutTestVariables } from '../../harness/cli.js';
import { REPO } from '../../harness/paths.js';
import { tempDir } from '../support/fs.js';
import { freePort } from '../support/net.js';
import { waitFor } from '../../harness/sidecar.js';

const DEMO = path.join(REPO, 'build', 'examples', 'demo.js');

/** The demo with its bot directory in dir/auth_info and its PostgreSQL in dir/pg (`extra` flags after). */
function startDemo(dir: string, seconds: number, extra: string[] = ['--port', '0']) {
  const flags = ['--dir', path.join(dir, 'auth_info'), '--data-dir', path.join(dir, 'pg'), '--seconds', String(seconds), ...extra];
  const child = spawn(process.execPath, [DEMO, ...flags], {
    env: { ...withoutTestVariables(process.env), DATABASE_URL: '' },
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
  it('takes its port and directories as flags, shown with their defaults in --help; anything else is a usage error', async () => {
    const help = spawnSync(process.execPath, [DEMO, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    for (const flag of [
      /--port PORT .*\(default 9464\)/,
      /--dir DIR .*\(default demo\/auth_info/,
      /--data-dir DIR .*\(default \.baileys-keeper/,
      /--seconds N/,
    ])
      assert.match(help.stdout, flag);
    for (const bad of [['--port', 'x'], ['--port', '70000'], ['--seconds', '-1'], ['--bogus']]) {
      const run = spawnSync(process.execPath, [DEMO, ...bad], {
        encoding: 'utf8',
        env: { ...withoutTestVariables(process.env), DATABASE_URL: '' },
      });
      assert.equal(run.status, 64, `${bad.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^demo: .*\n\nUsage: npm start -- \[options\]/s, bad.join(' '));
    }
  });

  it('a PostgreSQL that cannot start: what to do and exit 2, no stack trace', {
    skip: process.getuid?.() !== 0 && 'needs root (the server then runs as another account)',
  }, async () => {
    // As root the server runs as another account, which cannot pass a 0700 parent directory.
    const closed = await tempDir('demo-closed');
    await chmod(closed, 0o700);
    const run = spawnSync(process.execPath, [DEMO, '--port', '0', '--data-dir', path.join(closed, 'pg'), '--seconds', '1'], {
      encoding: 'utf8',
      env: { ...withoutTestVariables(process.env), DATABASE_URL: '' },
    });
    assert.equal(run.status, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /^demo: the embedded PostgreSQL runs as user '\w+' .*cannot reach .*: choose a --data-dir/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  it('serves on the --port given and writes only under --dir and --data-dir', async () => {
    const dir = await tempDir('demo-flags');
    await chmod(dir, 0o755);
    const port = await freePort();
    const run = startDemo(dir, 0, ['--port', String(port)]);
    await waitFor(
      () => (run.output.includes('"msg":"backup stored"') ? true : null),
      60_000,
      () => `the demo never backed up:\n${run.output}`,
      run.exited,
    );
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^baileys_keeper_lease_held(\{[^}]*\})? 1$/m);
    run.child.kill('SIGTERM');
    const { code, output } = await run.exited;
    assert.equal(code, 0, output);
    assert.deepEqual((await readdir(dir)).sort(), ['auth_info', 'pg']);
    assert.ok((await readdir(path.join(dir, 'auth_info'))).includes('creds.json'));
  });

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
