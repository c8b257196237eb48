// The command line as a person meets it: help with defaults and env twins, "did you mean" for typos,
// --version, durations with units, a usage error said once, and logs readable on a terminal (pino-pretty) but JSON in a pipe.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runCli } from '../../harness/cli.js';
import { tempDir } from '../support/fs.js';
import { CLI, REPO } from '../../harness/paths.js';

const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('KEEPER_') && key !== 'DATABASE_URL'));

describe('the command line', () => {
  it('help COMMAND and COMMAND --help show every flag with its env twin and default, and env-only settings', async () => {
    const viaHelp = await runCli(['help', 'sidecar'], { env });
    const viaFlag = await runCli(['sidecar', '--help'], { env });
    assert.equal(viaHelp.code, 0);
    assert.equal(viaHelp.stdout, viaFlag.stdout);
    assert.match(viaHelp.stdout, /--debounce DURATION +back up after this long without changes \[env KEEPER_DEBOUNCE_MS; default 1s\]/);
    assert.match(viaHelp.stdout, /Environment only:\n {2}KEEPER_API_TOKEN \| KEEPER_API_TOKEN_FILE/);
    assert.doesNotMatch(viaHelp.stdout, /--force/, 'a flag of another command is not listed');
  });

  it('suggests the command or flag a typo meant, and exits 64', async () => {
    const command = await runCli(['restor'], { env });
    assert.equal(command.code, 64);
    assert.match(command.stderr, /unknown command "restor": did you mean 'restore'\?/);
    const help = await runCli(['help', 'sidecr'], { env });
    assert.equal(help.code, 64);
    assert.match(help.stderr, /did you mean 'sidecar'\?/);
    const flag = await runCli(['status', '--sesion', 'x'], { env });
    assert.equal(flag.code, 64);
    assert.match(flag.stderr, /unknown option --sesion \(did you mean --session\?\); see 'baileys-keeper status --help'/);
    const elsewhere = await runCli(['backup', '--force'], { env });
    assert.equal(elsewhere.code, 64);
    assert.match(elsewhere.stderr, /'backup' does not take --force \(it is an option of restore\)/);
    const far = await runCli(['status', '--zzzzzz'], { env });
    assert.match(far.stderr, /unknown option --zzzzzz; see/);
    assert.doesNotMatch(far.stderr, /did you mean/);
  });

  it('--version, -v, -V and version print the package version and exit 0', async () => {
    const { version } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    for (const args of [
      ['--version'],
      ['-v'],
      ['-V'],
      ['version'],
      ['sidecar', '--version'],
      ['restore', '-v'],
      ['run', '-V', '--', 'x'],
    ]) {
      const result = await runCli(args, { env });
      assert.deepEqual([result.code, result.stdout, result.stderr], [0, `${version}\n`, ''], args.join(' '));
    }
  });

  it('takes durations with their unit, as flag and variable alike; a bare number keeps the unit its variable names', async () => {
    const dir = path.join(await tempDir('durations'), 'auth_info');
    // Nothing listens on port 1: restore retries for --wait, then exits 2; how long it took shows the unit read.
    const timed = async (args: string[], extra: Record<string, string> = {}) => {
      const started = Date.now();
      const result = await runCli(['restore', '--dir', dir, '--database-url', 'postgres://keeper@127.0.0.1:1/app', ...args], {
        env: { ...env, ...extra },
      });
      assert.equal(result.code, 2, result.stderr);
      return Date.now() - started;
    };
    const flag = await timed(['--wait', '1500ms']);
    assert.ok(flag >= 1500 && flag < 60_000, `--wait 1500ms took ${flag} ms`);
    const variable = await timed([], { KEEPER_WAIT_SECONDS: '1s' });
    assert.ok(variable >= 1000 && variable < 60_000, `KEEPER_WAIT_SECONDS=1s took ${variable} ms`);
    const bare = await timed([], { KEEPER_WAIT_SECONDS: '1' });
    assert.ok(bare >= 1000 && bare < 60_000, `KEEPER_WAIT_SECONDS=1 (seconds) took ${bare} ms`);
    const bad = await runCli(['sidecar', '--debounce', '1 sec'], { env });
    assert.equal(bad.code, 64);
    assert.match(
      bad.stderr,
      /invalid --debounce \/ KEEPER_DEBOUNCE_MS "1 sec": expected a number with its unit \(ms, s, m, h or d\), such as 30s/,
    );
    const tooLong = await runCli(['sidecar'], { env: { ...env, KEEPER_INTERVAL_MS: '30d' } });
    assert.equal(tooLong.code, 64);
    assert.match(tooLong.stderr, /invalid --interval \/ KEEPER_INTERVAL_MS "30d": give at least 100ms and at most 24d/);
  });

  it('says a usage error once', async () => {
    const result = await runCli(['delete', '--session', 'alpha'], { env });
    assert.equal(result.code, 64);
    assert.equal(result.stderr.match(/add --yes to confirm/g)?.length, 1, result.stderr);
    assert.match(result.stderr, /^baileys-keeper: deleting session alpha and its whole history cannot be undone: add --yes/);
  });

  // Nothing listens on port 1: the command logs why it failed, and exits 2.
  const unreachable = ['status', '--database-url', 'postgres://keeper@127.0.0.1:1/app'];

  it('logs JSON in a pipe, pino-pretty lines with --log-format pretty, and refuses other formats', async () => {
    const json = await runCli(unreachable, { env });
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stderr.trim().split('\n').at(-1)!).level, 'error');
    const pretty = await runCli([...unreachable, '--log-format', 'pretty'], { env });
    assert.match(pretty.stderr, /^\[\d\d:\d\d:\d\d\.\d{3}\] ERROR: cannot reach PostgreSQL at postgres:\/\/keeper@127\.0\.0\.1:1\/app/m);
    assert.doesNotMatch(pretty.stderr, /"level":/);
    const bad = await runCli(['status', '--log-format', 'xml'], { env });
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /invalid --log-format \/ KEEPER_LOG_FORMAT "xml": use json or pretty/);
  });

  it('logs pretty by default on a terminal (a real pseudo-terminal, through script(1))', async () => {
    const command = [process.execPath, CLI, ...unreachable].join(' ');
    const { stdout } = await promisify(execFile)('script', ['-qec', command, '/dev/null'], { env }).catch(
      (error: { stdout: string }) => error,
    );
    assert.match(stdout, /ERROR.*cannot reach PostgreSQL/);
    assert.doesNotMatch(stdout, /"level":/);
  });
});
