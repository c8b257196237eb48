// A listen address another process holds: the keeper says so once and keeps backing up without HTTP —
// `run` still starts the bot — retrying to listen in the background and saying so when it does.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, collect, messages, startCli } from '../../harness/cli.js';
import { readTree } from '../../harness/fs.js';
import { REPO } from '../../harness/paths.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const BOT = path.join(REPO, 'build', 'test', 'support', 'mini-bot.js');
const FAST = ['--debounce', '100', '--max-delay', '500', '--shutdown-quiet', '100'];

/** A real listener on a loopback port, as another process's would be. */
async function occupiedPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy()).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { port: (server.address() as net.AddressInfo).port, release: () => new Promise((resolve) => server.close(() => resolve())) };
}

const count = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line)).length;
const healthz = (port: number) =>
  fetch(`http://127.0.0.1:${port}/healthz`).then(
    (response) => response.status,
    () => null,
  );

describe('a busy listen port', async () => {
  const url = await freshDatabase('busy-port');
  const env = cliEnv(url);

  it('run: said once, the bot runs and is backed up; listening follows once the port is free', async () => {
    const busy = await occupiedPort();
    const dir = path.join(await tempDir('run'), 'auth_info');
    await writeSession(dir, { preKeys: 2 });
    const child = startCli(
      [
        'run',
        '--dir',
        dir,
        '--session',
        'busy-run',
        ...FAST,
        '--listen',
        `127.0.0.1:${busy.port}`,
        '--',
        process.execPath,
        BOT,
        dir,
        'wait-term',
      ],
      { env },
    );
    const result = collect(child);
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await waitFor(
      async () => (/bot: ready/.test(stdout) ? true : null),
      20_000,
      () => stdout,
    );
    assert.equal(count(messages(stdout), /cannot listen/), 1);
    assert.match(
      messages(stdout),
      new RegExp(
        `cannot listen on 127\\.0\\.0\\.1:${busy.port}: another process listens there .* \\(EADDRINUSE\\)\\. Running without HTTP — no /healthz, /readyz, /metrics or session API until it can — while backups go on\\. Free the address, or choose another with --listen / KEEPER_LISTEN`,
      ),
    );
    await busy.release();
    await waitFor(
      async () => ((await healthz(busy.port)) === 200 ? true : null),
      15_000,
      () => stdout,
    );
    assert.equal(count(messages(stdout), /127\.0\.0\.1:\d+ is free now: \/healthz, \/readyz, \/metrics and the session API answer/), 1);
    child.kill('SIGTERM');
    const end = await result;
    assert.equal(end.code, 0, end.stdout);
    assert.equal(count(messages(end.stdout), /cannot listen/), 1, 'said once, however many attempts');
    assert.deepEqual(diffTrees(await storedHead(url, 'busy-run'), await readTree(dir)), [], "the bot's writes are stored");
  });

  it('sidecar: said once while the port stays busy, backs up all the same, stops cleanly', async () => {
    const busy = await occupiedPort();
    try {
      const dir = await tempDir('sidecar');
      await writeSession(dir, { preKeys: 2 });
      const child = startCli(['sidecar', '--dir', dir, '--session', 'busy-sidecar', ...FAST, '--listen', `127.0.0.1:${busy.port}`], {
        env,
      });
      const result = collect(child);
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      await waitFor(
        async () => (diffTrees(await storedHead(url, 'busy-sidecar'), await readTree(dir)).length === 0 ? true : null),
        20_000,
        () => stdout,
      );
      // Retries at 0.25, 0.5, 1 and 2 s have come and gone by now.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      child.kill('SIGTERM');
      const end = await result;
      assert.equal(end.code, 0, end.stdout);
      assert.equal(count(messages(end.stdout), /cannot listen/), 1, end.stdout);
      assert.equal(count(messages(end.stdout), /is free now/), 0);
    } finally {
      await busy.release();
    }
  });
});
