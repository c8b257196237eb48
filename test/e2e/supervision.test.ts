// `run` supervises the bot's whole process tree: `npm start`, shell pipelines and wrappers that leave
// the bot running get the stop signal as a group, and the final backup waits for every one of them.
import assert from 'node:assert/strict';
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { REPO } from '../../harness/paths.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

const BOT = path.join(REPO, 'build', 'test', 'support', 'mini-bot.js');
const FAST = ['--debounce', '100', '--max-delay', '500', '--shutdown-quiet', '100'];
/** The key mini-bot's slow-term mode writes after SIGTERM, once its slow stop is done. */
const LAST_KEY = 'session-5511000000098.0.json';
/** How long the bot takes to stop after SIGTERM, ms: long enough that a backup taken when the wrapper exits misses it. */
const BOT_STOP_MS = 1500;

describe('run supervises the process group', async () => {
  const url = await freshDatabase('supervision');
  const env = cliEnv(url, { npm_config_update_notifier: 'false', npm_config_fund: 'false' });

  /** Starts `run -- …command` for `session`, waits for "bot: ready", SIGTERMs it; returns the exit and the output. */
  async function stopWhileRunning(session: string, dir: string, command: string[], cwd?: string) {
    const service = await startService(['run', '--dir', dir, '--session', session, ...FAST, '--', ...command], env, { cwd });
    await waitFor(
      () => (service.output.some((line) => line.includes('bot: ready')) ? true : null),
      20_000,
      () => service.output.join('\n'),
    );
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
    const ended = await service.stop('SIGTERM');
    return { ended, output: service.output.join('\n') };
  }

  it('npm start: the bot behind npm gets SIGTERM, and its last write, made while stopping, is stored', async () => {
    const project = await tempDir('npm-bot');
    const dir = path.join(project, 'auth_info');
    const start = `node ${JSON.stringify(BOT)} ${JSON.stringify(dir)} slow-term ${BOT_STOP_MS}`;
    await writeFile(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'npm-bot', version: '1.0.0', private: true, scripts: { start } }),
    );
    const { ended, output } = await stopWhileRunning('npm', dir, ['npm', 'start'], project);
    assert.ok(output.includes('bot: stopped'), `the bot itself got the signal and stopped:\n${output}`);
    assert.match(output, /the bot's process group has exited: final backup/);
    const head = await storedHead(url, 'npm');
    assert.ok(head.has(LAST_KEY), `the key written ${BOT_STOP_MS} ms after SIGTERM is stored:\n${output}`);
    assert.deepEqual(diffTrees(head, await readTree(dir)), []);
    assert.ok(ended.code === 0 || ended.code === 143, `run exits with npm's code, got ${ended.code}`);
  });

  it('a shell pipeline (sh -c "node bot.js | tee log"): the final backup holds the last write', async () => {
    const work = await tempDir('pipeline');
    const dir = path.join(work, 'auth_info');
    const log = path.join(work, 'bot.log');
    const script =
      `${JSON.stringify(process.execPath)} ${JSON.stringify(BOT)} ` +
      `${JSON.stringify(dir)} slow-term ${BOT_STOP_MS} | tee ${JSON.stringify(log)}`;
    const { output } = await stopWhileRunning('pipeline', dir, ['sh', '-c', script]);
    const head = await storedHead(url, 'pipeline');
    assert.ok(head.has(LAST_KEY), `the key written ${BOT_STOP_MS} ms after SIGTERM is stored:\n${output}`);
    assert.deepEqual(diffTrees(head, await readTree(dir)), []);
  });

  it(
    'a wrapper that exits while the bot runs on: the rest of its ' + "group is stopped, then the final backup; the wrapper's code is kept",
    async () => {
      const work = await tempDir('wrapper');
      const dir = path.join(work, 'auth_info');
      const ready = path.join(work, 'ready');
      // The bot in the background; the wrapper exits 5 as soon as the bot is up (a script that forgot `wait`).
      const script =
        `${JSON.stringify(process.execPath)} ${JSON.stringify(BOT)} ` +
        `${JSON.stringify(dir)} slow-term ${BOT_STOP_MS} > ${JSON.stringify(ready)} & ` +
        `while ! grep -q ready ${JSON.stringify(ready)} 2>/dev/null; do sleep 0.05; done; exit 5`;
      const result = await runCli(
        ['run', '--dir', dir, '--session', 'wrapper', ...FAST, '--listen', '127.0.0.1:0', '--', 'sh', '-c', script],
        { env },
      );
      assert.equal(result.code, 5, result.stdout);
      assert.match(result.stdout, /the bot's command exited while others of its process group still run: stopping them/);
      assert.ok((await storedHead(url, 'wrapper')).has(LAST_KEY), 'the background bot was stopped and its last write stored');
    },
  );

  it('a bot that ignores SIGTERM is SIGKILLed after --stop-timeout, and the final backup still runs', async () => {
    const dir = path.join(await tempDir('stubborn'), 'auth_info');
    const service = await startService(
      ['run', '--dir', dir, '--session', 'stubborn', ...FAST, '--stop-timeout', '500', '--', process.execPath, BOT, dir, 'ignore-term'],
      env,
    );
    await waitFor(() => (service.output.includes('bot: ready') ? true : null), 20_000);
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
    const ended = await service.stop('SIGTERM');
    assert.equal(ended.code, 137, service.output.join('\n'));
    assert.ok(service.output.includes('bot: ignoring SIGTERM'));
    assert.ok(service.output.some((line) => line.includes('still runs after --stop-timeout: killing it (SIGKILL), then the final backup')));
    // Written after SIGTERM, so only a final backup after the SIGKILL can have stored it.
    assert.ok((await storedHead(url, 'stubborn')).has('session-5511000000013.0.json'));
  });

  it('--stop-timeout must be a duration', async () => {
    const result = await runCli(['run', '--stop-timeout', 'soon', '--', 'true'], { env });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /invalid --stop-timeout \/ KEEPER_STOP_TIMEOUT_MS "soon"/);
  });

  it('a stop signal before the bot started: it is never started, and run exits 128+signal', async () => {
    const work = await tempDir('early-stop');
    const dir = path.join(work, 'auth_info');
    const marker = path.join(work, 'bot-started');
    // The restore waits for another holder's lease: a window in which the bot is not started yet.
    await query(
      url,
      'INSERT INTO baileys_keeper.sessions (session_id, lease_owner, lease_token, ' +
        "lease_expires_at) VALUES ('early', 'old-pod:1', 1, now() + interval '1 minute')",
    );
    const service = await startService(
      ['run', '--dir', dir, '--session', 'early', ...FAST, '--lease-wait', '5', '--', process.execPath, BOT, dir, 'marker', marker],
      env,
    );
    await waitFor(
      () => (service.output.some((line) => line.includes('waiting for its final backup')) ? true : null),
      15_000,
      () => service.output.join('\n'),
    );
    const ended = await service.stop('SIGTERM');
    assert.equal(ended.code, 143, service.output.join('\n'));
    assert.ok(service.output.some((line) => line.includes('stop signal before the bot started: it will not be started')));
    await assert.rejects(access(marker), /ENOENT/);
  });

  it('the bot is started only once the directory is watched: a bot that writes at once is stored', async () => {
    const dir = path.join(await tempDir('first-write'), 'auth_info');
    const result = await runCli(
      ['run', '--dir', dir, '--session', 'first-write', ...FAST, '--listen', '127.0.0.1:0', '--', process.execPath, BOT, dir, 'exit', '0'],
      { env },
    );
    assert.equal(result.code, 0, result.stdout);
    const watching = result.stdout.indexOf('"watch":');
    const started = result.stdout.indexOf('bot started');
    assert.ok(watching !== -1 && started !== -1 && watching < started, `watching is said before the bot starts:\n${result.stdout}`);
    await access(path.join(dir, 'creds.json'));
    assert.deepEqual(diffTrees(await storedHead(url, 'first-write'), await readTree(dir)), []);
  });
});
