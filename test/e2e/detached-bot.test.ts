// `run` and a bot that leaves its process group (pm2 start, nohup/setsid … &, a double fork): the final
// backup waits for the directory to be quiet, and a writer still at work outside the group is named at
// warn instead of "final backup done". A bot that writes and exits gets no warning and no wait beyond
// --shutdown-quiet.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cliEnv, runCli } from '../../harness/cli.js';
import { readTree } from '../../harness/fs.js';
import { REPO } from '../../harness/paths.js';
import { storedHead } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const DETACHING_BOT = path.join(REPO, 'build', 'test', 'support', 'detaching-bot.js');
const MINI_BOT = path.join(REPO, 'build', 'test', 'support', 'mini-bot.js');
const FAST = ['--debounce', '100', '--max-delay', '300', '--listen', '127.0.0.1:0'];
const OUTSIDE = /a process outside the bot's process group is still writing/;
const DONE_CLEAN = /final backup done/;

interface LogLine {
  /** ms since the epoch. */
  time: number;
  level: string;
  msg: string;
}

/** run's JSON log lines (the bot's own output left out). */
function logLines(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { time: string; level: string; msg: string })
    .map((line) => ({ ...line, time: Date.parse(line.time) }));
}

/** ms from the log line matching `from` to the one matching `to`. */
function between(lines: LogLine[], from: RegExp, to: RegExp): number {
  const start = lines.find((line) => from.test(line.msg));
  const end = lines.find((line) => to.test(line.msg));
  assert.ok(start && end, `log lines ${from} and ${to}:\n${lines.map((line) => line.msg).join('\n')}`);
  return end.time - start.time;
}

/** Kills the detached writer whose pid the bot left in `pidFile`, if it still runs; returns its pid (0: none). */
async function killWriter(pidFile: string): Promise<number> {
  const pid = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pid;
}

describe('run with a bot that detaches from its process group', async () => {
  const url = await freshDatabase('detached');
  const env = cliEnv(url);

  /**
   * `run` of the detaching bot for `session` (keys `writes` times, `intervalMs` apart, outside the group;
   * 0: for ever) with `flags`; with `sessions` the bot's directory is `<sessions dir>/<session>`. The
   * writer is killed after the test.
   */
  async function runDetaching(session: string, flags: string[], writes: number, intervalMs: number, sessions = false) {
    const work = await tempDir(`detached-${session}`);
    const dir = sessions ? path.join(work, 'sessions', session) : path.join(work, 'auth_info');
    const pidFile = path.join(work, 'writer.pid');
    // Registered before the bot can start it, and killed as soon as run is over: a test never leaves it behind.
    after(() => killWriter(pidFile));
    const where = sessions ? ['--sessions-dir', path.dirname(dir)] : ['--dir', dir, '--session', session];
    const bot = [process.execPath, DETACHING_BOT, dir, pidFile, String(writes), String(intervalMs)];
    const result = await runCli(['run', ...where, ...FAST, ...flags, '--', ...bot], { env });
    const writerPid = await killWriter(pidFile);
    return { result, dir, writerPid, lines: logLines(result.stdout) };
  }

  it('a writer that never stops: the final backup waits (bounded), then warns instead of saying all is stored', async () => {
    const { result, lines } = await runDetaching('forever', ['--shutdown-quiet', '300', '--shutdown-timeout', '4000'], 0, 100);
    assert.equal(result.code, 0, "run exits with the bot's code (pm2 start's 0)");
    const warning = lines.find((line) => OUTSIDE.test(line.msg));
    assert.ok(warning, `warned about the writer outside the group:\n${result.stdout}`);
    assert.equal(warning.level, 'warn');
    assert.match(warning.msg, /pm2-runtime, not pm2 start/);
    assert.ok(!lines.some((line) => DONE_CLEAN.test(line.msg)), 'never says the final backup is done as if all were well');
    // Never quiet: the wait ends at its bound, half of --shutdown-timeout, and the final backup follows.
    const waited = between(lines, /the bot's process group has exited/, OUTSIDE);
    assert.ok(waited >= 1_900 && waited < 4_000, `the final backup waited for quiet up to its bound: ${waited} ms`);
    const stored = [...(await storedHead(url, 'forever')).keys()].filter((name) => name.includes('detached-'));
    assert.ok(stored.length >= 10, `writes made after the group exited, during the wait, are stored: ${stored.length}`);
  });

  for (const sessions of [false, true]) {
    it(`a writer that stops soon after${sessions ? ' (--sessions-dir)' : ''}: the final backup waits for quiet and holds all of it, and the writer is named`, async () => {
      // Six keys 150 ms apart: the last one lands about 900 ms after the bot (the group) is gone.
      const session = sessions ? 'brief-many' : 'brief';
      const { result, dir, lines } = await runDetaching(session, ['--shutdown-quiet', '700'], 6, 150, sessions);
      assert.equal(result.code, 0, result.stdout);
      assert.ok((await readTree(dir)).has('session-detached-00006.json'), 'the writer finished before run exited');
      const head = await storedHead(url, session);
      assert.ok(head.has('session-detached-00006.json'), `the final backup waited for the last outside write:\n${result.stdout}`);
      assert.ok(
        lines.some((line) => OUTSIDE.test(line.msg) && line.level === 'warn'),
        `files changed after the group exited: a writer outside it is named:\n${result.stdout}`,
      );
      assert.ok(!lines.some((line) => DONE_CLEAN.test(line.msg)));
    });
  }

  it('an idle detached bot that writes nothing: named as left running outside the group, no "final backup done"', async () => {
    const { result, writerPid: pid, lines } = await runDetaching('idle', ['--shutdown-quiet', '300'], -1, 0);
    assert.equal(result.code, 0, result.stdout);
    const warning = lines.find((line) => /the bot left 1 process running outside its process group/.test(line.msg));
    assert.ok(warning, `the detached process is named:\n${result.stdout}`);
    assert.equal(warning.level, 'warn');
    assert.match(warning.msg, new RegExp(`\\(pid ${pid} "node [^"]*"\\)`), 'named by its command line');
    assert.match(warning.msg, /pm2-runtime, not pm2 start/);
    assert.ok(!lines.some((line) => DONE_CLEAN.test(line.msg)));
  });

  it('a bot that writes and exits: no warning, everything stored, no wait beyond --shutdown-quiet', async () => {
    const dir = path.join(await tempDir('attached'), 'auth_info');
    const quietMs = 800;
    const result = await runCli(
      [
        'run',
        '--dir',
        dir,
        '--session',
        'attached',
        ...FAST,
        '--shutdown-quiet',
        String(quietMs),
        '--',
        process.execPath,
        MINI_BOT,
        dir,
        'exit',
        '0',
      ],
      { env },
    );
    assert.equal(result.code, 0, result.stdout);
    const lines = logLines(result.stdout);
    assert.ok(!lines.some((line) => OUTSIDE.test(line.msg)), result.stdout);
    const took = between(lines, /the bot's process group has exited/, DONE_CLEAN);
    assert.ok(took >= quietMs - 50, `the final backup waited --shutdown-quiet: ${took} ms`);
    assert.ok(took < quietMs + 1_500, `and not much longer (one backup): ${took} ms`);
    const head = await storedHead(url, 'attached');
    assert.ok(head.has('session-5511000000010.0.json') && head.has('creds.json'));
  });
});
