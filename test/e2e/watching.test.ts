// Watching that cannot silently stop: a symlinked directory, a directory removed before shutdown, a node
// out of inotify instances that falls back to polling (or, with --watch native, says so on /healthz),
// and the session API before the directory exists. A directory deleted and recreated (logout →
// re-pair) is followed within one poll: checked on a manual clock in integration/sidecar-loop.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { access, chmod, chown, copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { exhaustInotify, systemPython } from '../support/inotify.js';
import { readTree } from '../../harness/fs.js';
import { REPO } from '../../harness/paths.js';
import { diffTrees, startService, storedHead, waitFor, type Service } from '../../harness/sidecar.js';

const TOKEN = 'watching-token-0123456789abcdef';

async function healthz(service: Service): Promise<{ status: number; body: { status: string; error?: string; watch?: string } }> {
  const { status, text } = await service.get('/healthz');
  return { status, body: JSON.parse(text) };
}

/** Waits for `service` to be ready, killed after the test; it said `warning` once, naming EMFILE. */
async function fellBackOnce(service: Service, warning: string): Promise<void> {
  after(() => service.child.kill('SIGKILL'));
  await waitFor(
    async () => ((await service.get('/readyz')).status === 200 ? true : null),
    15_000,
    () => service.output.join('\n'),
  );
  const warnings = service.output.filter((line) => line.includes(warning));
  assert.equal(warnings.length, 1, service.output.join('\n'));
  assert.match(warnings[0]!, /EMFILE/);
}
describe('watching the auth directory', async () => {
  const url = await freshDatabase('watching');
  const env = cliEnv(url);

  it('a symlinked --dir is watched through the link (not only at the periodic rescan)', async () => {
    const work = await tempDir('symlinked');
    const volume = path.join(work, 'volume');
    await writeSession(volume, { preKeys: 2 });
    const link = path.join(work, 'auth_info');
    await symlink(volume, link);
    const service = await startService(
      ['sidecar', '--dir', link, '--session', 'symlinked', '--debounce', '100', '--max-delay', '300'],
      env,
    );
    after(() => service.child.kill('SIGKILL'));
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 15_000);
    await writeFile(path.join(link, 'pre-key-91.json'), JSON.stringify({ public: 'a', private: 'b' }));
    // The default --interval is 2 minutes: only the watcher stores it this soon.
    await waitFor(
      async () => ((await storedHead(url, 'symlinked')).has('pre-key-91.json') ? true : null),
      10_000,
      () => service.output.join('\n'),
    );
    assert.equal((await service.stop()).code, 0);
  });

  it('a directory removed before shutdown (a bot that logged out): the stored login is kept, exit 0 at once', async () => {
    const dir = path.join(await tempDir('gone'), 'auth_info');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(['sidecar', '--dir', dir, '--session', 'gone'], env);
    after(() => service.child.kill('SIGKILL'));
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 15_000);
    const stored = await storedHead(url, 'gone');
    await rm(dir, { recursive: true });
    await waitFor(() => (service.output.some((line) => line.includes('the auth directory was removed')) ? true : null), 10_000);
    const ended = await service.stop();
    assert.equal(ended.code, 0, service.output.join('\n'));
    assert.ok(
      service.output.some((line) => line.includes('the auth directory is gone at shutdown: nothing to store, the stored login is kept')),
    );
    assert.deepEqual(await storedHead(url, 'gone'), stored);
  });

  it('the session API and the schema work before the watched directory exists', async () => {
    const fresh = await freshDatabase('watching-nodir'); // no schema yet: the sidecar must migrate it itself
    const dir = path.join(await tempDir('nodir'), 'not-yet', 'auth_info');
    const service = await startService(['sidecar', '--dir', dir, '--session', 'later'], cliEnv(fresh, { KEEPER_API_TOKEN: TOKEN }));
    after(() => service.child.kill('SIGKILL'));
    const call = async (method: string, route: string, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${service.port}${route}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}` },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    const status = await waitFor(
      async () => {
        const answer = await call('GET', '/api/session/status');
        return answer.status === 200 ? answer : null;
      },
      10_000,
      () => service.output.join('\n'),
    );
    assert.deepEqual(status.json, { sessions: [] });
    const source = await tempDir('nodir-source');
    await writeSession(source, { preKeys: 2 });
    const posted = await call('POST', '/api/session/backup', {
      session_id: 'other',
      session_data: Object.fromEntries(await readTree(source)),
    });
    assert.equal(posted.status, 200, JSON.stringify(posted.json));
    assert.equal((await call('GET', '/api/session/restore?session_id=other')).status, 200);
    assert.equal((await service.get('/readyz')).status, 503, 'not ready: the directory has not been scanned');
    assert.equal((await healthz(service)).status, 200);

    // The directory appears (the bot started): it is watched and backed up.
    await writeSession(dir, { preKeys: 2 });
    await waitFor(
      async () => (diffTrees(await storedHead(fresh, 'later'), await readTree(dir)).length === 0 ? true : null),
      10_000,
      () => service.output.join('\n'),
    );
    assert.equal((await service.stop()).code, 0);
  });
});

// ---------------------------------------------------------------- a node out of inotify instances

const isRoot = process.getuid?.() === 0;
// CI runs as root with Debian's python3 and sets this, so the test cannot silently skip there.
const required = process.env['KEEPER_TEST_REQUIRE_UID_SWITCH'] === '1';
const UID = 40_000 + randomInt(20_000);
const python = isRoot ? systemPython(UID) : null;
const skip =
  python === null && !required
    ? `needs root and a system python3 to act as a throwaway user (${isRoot ? 'no python3 it can run' : 'not root'})`
    : false;

describe('native watching unavailable (inotify instances used up)', { skip }, async () => {
  assert.ok(python, 'KEEPER_TEST_REQUIRE_UID_SWITCH=1 but the test cannot run as a throwaway user (root and /usr/bin/python3 needed)');
  const url = await freshDatabase('inotify');
  const env = cliEnv(url);
  // The throwaway user runs the single-file bundle from a directory it can read, and a node it can run.
  const home = await tempDir('inotify-user');
  await chmod(home, 0o755);
  const script = path.join(home, 'baileys-keeper.mjs');
  await copyFile(path.join(REPO, 'dist', 'baileys-keeper.mjs'), script);
  let node = process.execPath;
  if (spawnSync(node, ['-e', ''], { uid: UID, gid: UID }).status !== 0) {
    node = path.join(home, 'node');
    await copyFile(process.execPath, node);
  }
  const asUser = { uid: UID, script, node };
  const exhauster = await exhaustInotify(UID);
  after(() => exhauster.kill('SIGKILL'));

  async function userDir(label: string): Promise<string> {
    const dir = path.join(home, label);
    await mkdir(dir);
    await chown(dir, UID, UID);
    return dir;
  }

  it('auto (the default): falls back to polling, says so once, shows it in a metric, and backs up', async () => {
    const dir = await userDir('auto');
    await writeSession(dir, { preKeys: 3 });
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'polled', '--poll-interval', '200', '--debounce', '100', '--max-delay', '300'],
      env,
      asUser,
    );
    await fellBackOnce(service, 'native watching is unavailable');
    assert.equal(await service.metric('baileys_keeper_watch_polling'), 1);
    assert.deepEqual(await healthz(service), { status: 200, body: { status: 'ok', watch: 'polling' } });

    await writeFile(path.join(dir, 'pre-key-90.json'), JSON.stringify({ public: 'a', private: 'b' }));
    await rm(path.join(dir, 'pre-key-1.json'));
    await waitFor(
      async () => (diffTrees(await storedHead(url, 'polled'), await readTree(dir)).length === 0 ? true : null),
      10_000,
      () => service.output.join('\n'),
    );
    assert.equal((await service.stop()).code, 0);
  });

  it('--sessions-dir, auto: the sessions directory is polled too, and a session that appears is kept', async () => {
    const sessionsDir = await userDir('fleet');
    await writeSession(path.join(sessionsDir, 'first'), { preKeys: 2 });
    // A long --interval: only the (polled) watch, not the periodic listing, can pick a new session up in time.
    const service = await startService(
      [
        'sidecar',
        '--sessions-dir',
        sessionsDir,
        '--poll-interval',
        '200',
        '--debounce',
        '100',
        '--max-delay',
        '300',
        '--interval',
        '600000',
      ],
      env,
      asUser,
    );
    await fellBackOnce(service, 'native watching is unavailable for the sessions directory');
    assert.deepEqual(await healthz(service), { status: 200, body: { status: 'ok', watch: 'polling' } });

    await writeSession(path.join(sessionsDir, 'second'), { preKeys: 2 });
    await waitFor(
      async () => (diffTrees(await storedHead(url, 'second'), await readTree(path.join(sessionsDir, 'second'))).length === 0 ? true : null),
      10_000,
      () => service.output.join('\n'),
    );
    assert.equal((await service.stop()).code, 0);
  });

  it('--watch native: /healthz answers 503 with the reason, and nothing pretends to back up', async () => {
    const dir = await userDir('native');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(['sidecar', '--dir', dir, '--session', 'native-only', '--watch', 'native'], env, asUser);
    after(() => service.child.kill('SIGKILL'));
    const health = await waitFor(
      async () => {
        const answer = await healthz(service);
        return answer.status === 503 ? answer : null;
      },
      10_000,
      () => service.output.join('\n'),
    );
    assert.match(health.body.error ?? '', /cannot watch the auth directory: .*EMFILE/);
    assert.equal((await service.get('/readyz')).status, 503);
    assert.equal((await storedHead(url, 'native-only')).size, 0);
    assert.ok(service.output.some((line) => line.includes('start-up step failed, retrying')));
    await service.stop('SIGKILL');
  });

  it('run --watch native does not start the bot while it cannot watch; SIGTERM then ends it without starting it', async () => {
    const dir = await userDir('run-native');
    const marker = path.join(home, 'bot-started');
    const bot = path.join(REPO, 'build', 'test', 'support', 'mini-bot.js');
    const service = await startService(
      ['run', '--dir', dir, '--session', 'run-native', '--watch', 'native', '--', 'sh', '-c', `touch ${marker}; exec ${bot}`],
      env,
      asUser,
    );
    after(() => service.child.kill('SIGKILL'));
    await waitFor(
      async () => ((await healthz(service)).status === 503 ? true : null),
      10_000,
      () => service.output.join('\n'),
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await assert.rejects(access(marker), /ENOENT/, 'the bot was not started');
    assert.equal((await service.stop('SIGTERM')).code, 143, service.output.join('\n'));
    await assert.rejects(access(marker), /ENOENT/, 'nor on the way out');
  });
});
