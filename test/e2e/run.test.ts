// `run -- CMD`: restore, the bot as a child, backups while it runs, signals, exit codes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { REPO } from '../../harness/paths.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

const BOT = path.join(REPO, 'build', 'test', 'support', 'mini-bot.js');
const FAST = ['--debounce', '100', '--max-delay', '500', '--shutdown-quiet', '100', '--listen', '127.0.0.1:0'];

describe('run -- CMD', async () => {
  const url = await freshDatabase('run');
  const env = cliEnv(url);

  it("restores before the bot starts, stores the bot's writes, and exits with the bot's code", async () => {
    const source = await tempDir('source');
    await writeSession(source, { preKeys: 4 });
    assert.equal((await runCli(['backup', '--dir', source, '--session', 'code'], { env })).code, 0);
    const dir = path.join(await tempDir('run'), 'auth_info');
    const report = await runCli(['run', '--dir', dir, '--session', 'code', ...FAST, '--', process.execPath, BOT, dir, 'report'], { env });
    assert.equal(report.code, 0, report.stdout);
    assert.match(report.stdout, /bot: paired/, 'the bot found the restored login at start');

    const exit = await runCli(['run', '--dir', dir, '--session', 'code', ...FAST, '--', process.execPath, BOT, dir, 'exit', '3'], { env });
    assert.equal(exit.code, 3, exit.stdout);
    assert.deepEqual(
      diffTrees(await storedHead(url, 'code'), await readTree(dir)),
      [],
      'the final backup after the bot exited stored everything',
    );
    assert.ok((await readTree(dir)).has('session-5511000000010.0.json'));
  });

  it("the bot gets its own environment without the keeper's secrets; so does the embedded PostgreSQL", async () => {
    const secrets = { KEEPER_API_TOKEN: `token-${randomBytes(8).toString('hex')}`, BOT_OWN_SETTING: 'hello', PORT: '8080' };
    const dir = path.join(await tempDir('run-env'), 'auth_info');
    const keys = { KEEPER_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` };
    const withUrl = await runCli(['run', '--dir', dir, '--session', 'env', ...FAST, '--', process.execPath, BOT, dir, 'env'], {
      env: cliEnv(url, { ...secrets, ...keys }),
    });
    assert.equal(withUrl.code, 0, withUrl.stdout);
    for (const line of [
      'bot: KEEPER_ENCRYPTION_KEYS=unset',
      'bot: KEEPER_API_TOKEN=unset',
      'bot: DATABASE_URL=set',
      'bot: PORT=set',
      'bot: BOT_OWN_SETTING=hello',
    ]) {
      assert.ok(withUrl.stdout.split('\n').includes(line), `${line} in:\n${withUrl.stdout}`);
    }

    // Without DATABASE_URL: the embedded server is started for the run and is running while the bot looks.
    const dataDir = await tempDir('run-env-pg');
    await chmod(dataDir, 0o755); // as root the server runs as `postgres`, which must reach it
    const key = { KEEPER_ENCRYPTION_KEY: randomBytes(32).toString('base64') };
    const embedded = await runCli(
      [
        'run',
        '--dir',
        dir,
        '--session',
        'env',
        '--data-dir',
        dataDir,
        ...FAST,
        '--',
        process.execPath,
        BOT,
        dir,
        'env',
        path.join(dataDir, 'pg', 'postmaster.pid'),
      ],
      {
        env: cliEnv(url, { ...secrets, ...key, DATABASE_URL: undefined }),
      },
    );
    assert.equal(embedded.code, 0, embedded.stdout);
    for (const who of ['bot', 'server']) {
      for (const line of [`${who}: KEEPER_ENCRYPTION_KEY=unset`, `${who}: KEEPER_API_TOKEN=unset`, `${who}: BOT_OWN_SETTING=hello`]) {
        assert.ok(embedded.stdout.split('\n').includes(line), `${line} in:\n${embedded.stdout}`);
      }
    }
  });

  it('forwards SIGTERM to the bot, then stores what it wrote while stopping', async () => {
    const dir = path.join(await tempDir('term'), 'auth_info');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(
      ['run', '--dir', dir, '--session', 'term', ...FAST.slice(0, 6), '--', process.execPath, BOT, dir, 'wait-term'],
      env,
    );
    await waitFor(() => (service.output.some((line) => line === 'bot: ready') ? true : null), 10_000);
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
    const ended = await service.stop('SIGTERM');
    assert.equal(ended.code, 0, service.output.join('\n'));
    assert.ok(service.output.includes('bot: stopped'), 'the bot got the signal and stopped itself');
    const head = await storedHead(url, 'term');
    assert.ok(head.has('session-5511000000099.0.json'), "the bot's last write, made after SIGTERM, is stored");
    assert.deepEqual(diffTrees(head, await readTree(dir)), []);
  });

  it('forwards SIGHUP (the bot keeps running) and SIGINT', async () => {
    const dir = path.join(await tempDir('hup'), 'auth_info');
    const service = await startService(
      ['run', '--dir', dir, '--session', 'hup', ...FAST.slice(0, 6), '--', process.execPath, BOT, dir, 'signals'],
      env,
    );
    await waitFor(() => (service.output.includes('bot: ready') ? true : null), 10_000);
    service.child.kill('SIGHUP');
    await waitFor(() => (service.output.includes('bot: SIGHUP') ? true : null), 5000);
    assert.equal((await service.get('/healthz')).status, 200, 'run keeps going after SIGHUP');
    const ended = await service.stop('SIGINT');
    assert.equal(ended.code, 0);
    assert.ok(service.output.includes('bot: SIGINT'));
  });

  it('exits 128+signal when the bot is killed by a signal', async () => {
    const dir = path.join(await tempDir('killed'), 'auth_info');
    const result = await runCli(['run', '--dir', dir, '--session', 'killed', ...FAST, '--', process.execPath, BOT, dir, 'self-kill'], {
      env,
    });
    assert.equal(result.code, 137);
    assert.ok((await storedHead(url, 'killed')).has('session-5511000000011.0.json'), 'its writes were still stored');
  });

  it('does not start the bot when the restore fails (database unreachable after --wait): exit 2', async () => {
    const server = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const work = await tempDir('down');
    const marker = path.join(work, 'bot-started');
    const dir = path.join(work, 'auth_info');
    const result = await runCli(['run', '--dir', dir, '--wait', '1', ...FAST, '--', process.execPath, BOT, dir, 'marker', marker], {
      env: cliEnv(`postgres://keeper:pw@127.0.0.1:${port}/keeper`),
    });
    assert.equal(result.code, 2, result.stdout);
    assert.match(result.stdout, /restore failed, so the bot is not started/);
    await assert.rejects(access(marker), /ENOENT/);
  });

  it('exits 127 when the command cannot be started, and 64 without a command', async () => {
    const dir = path.join(await tempDir('nocmd'), 'auth_info');
    const missing = await runCli(['run', '--dir', dir, ...FAST, '--', '/nonexistent/bot'], { env });
    assert.equal(missing.code, 127);
    assert.match(missing.stdout, /cannot start \/nonexistent\/bot \(ENOENT\)/);
    const none = await runCli(['run', '--dir', dir], { env });
    assert.equal(none.code, 64);
    assert.match(none.stderr, /run needs the bot's command after --/);
  });
});
