// The session lifecycle with real processes (SPEC "Session lifecycle"): a bot that wipes its login while the
// sidecar watches is logged out, restore then writes no login (exit 3 with --require-backup), the logout
// command and API, bringing the previous login back by generation, and one tenant of a sessions directory
// logging out while the others stay paired. The writer is the real Baileys useMultiFileAuthState.
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openAuth, register, REGISTERED_JID, writeSession } from '../../harness/baileys.js';
import { cliEnv, collect, runCli, startCli } from '../../harness/cli.js';
import { tcpProxy } from '../../harness/proxy.js';
import { query } from '../../harness/db.js';
import { startService, waitFor, type Service } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const TOKEN = 'lifecycle-test-token-0123456789';

describe('session lifecycle', async () => {
  const url = await freshDatabase('lifecycle-e2e');
  const env = cliEnv(url, { KEEPER_API_TOKEN: TOKEN });

  const headReason = async (session: string) =>
    (
      await query<{ reason: string | null }>(
        url,
        `SELECT g.reason FROM baileys_keeper.sessions s LEFT JOIN baileys_keeper.generations g
            ON g.session_id = s.session_id AND g.generation = s.head_generation WHERE s.session_id = $1`,
        [session],
      )
    )[0]?.reason ?? null;

  const state = async (session: string) => {
    const result = await runCli(['status', '--json', '--session', session], { env });
    return JSON.parse(result.stdout).sessions[0].state as string;
  };

  /** Waits until the service has stored what the directory holds (its lag is 0 and a backup succeeded). */
  const settled = (service: Service, label: string, metric = 'baileys_keeper_backup_lag_seconds') =>
    waitFor(
      async () => ((await service.metric(metric)) === 0 ? true : null),
      15_000,
      () => `${label}:\n${service.output.join('\n')}`,
    );

  it('a bot that wipes its folder and starts unpaired while watched is logged out; restore writes no login', async () => {
    const dir = path.join(await tempDir('wipe'), 'auth');
    await writeSession(dir, { preKeys: 3 });
    const service = await startService(['sidecar', '--dir', dir, '--session', 'wipe', '--debounce', '100', '--max-delay', '200'], env);
    try {
      await waitFor(async () => ((await service.metric('baileys_keeper_session_registered')) === 1 ? true : null), 15_000);
      // WhatsApp answered 401: the bot wipes its auth folder and starts unpaired (fresh, unregistered creds).
      await rm(dir, { recursive: true });
      await (await openAuth(dir)).saveCreds();
      await waitFor(
        async () => ((await headReason('wipe')) === 'logout' ? true : null),
        15_000,
        () => service.output.join('\n'),
      );
      await settled(service, 'the unpaired directory is stored after the logout');
      assert.equal(await service.metric('baileys_keeper_session_events_total{event="logged_out"}'), 1);
      assert.equal(await service.metric('baileys_keeper_session_registered'), 0);
      assert.ok(service.output.some((line) => line.includes('session logged out')));
    } finally {
      await service.stop();
    }
    assert.equal(await state('wipe'), 'logged_out');

    // The pod is redeployed before anyone scans the QR: restore hands out no dead login.
    const fresh = await tempDir('wipe-redeploy');
    const restored = await runCli(['restore', '--dir', fresh, '--session', 'wipe'], { env });
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await readdir(fresh), []);
    assert.match(restored.stdout + restored.stderr, /was logged out at .*restore --session wipe --generation 1 --force/);
    const required = await runCli(['restore', '--dir', fresh, '--session', 'wipe', '--require-backup'], { env });
    assert.equal(required.code, 3, required.stderr);

    // Bringing the previous login back on purpose works, and ends the logged-out state.
    const back = await runCli(['restore', '--dir', fresh, '--session', 'wipe', '--generation', '1', '--force'], { env });
    assert.equal(back.code, 0, back.stderr);
    assert.ok((await readdir(fresh)).includes('creds.json'));
    assert.equal(await state('wipe'), 'unpaired');
  });

  it('run: a bot that wipes its folder on a 401 and exits is logged out; the next start restores no dead login', async () => {
    const dir = path.join(await tempDir('run-wipe'), 'auth');
    await writeSession(dir, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'run-wipe'], { env })).code, 0);
    // What many bots do on DisconnectReason.loggedOut: remove the auth folder and exit (the platform restarts them).
    const bot = `setTimeout(() => { require('node:fs').rmSync(${JSON.stringify(dir)}, { recursive: true }); process.exit(1); }, 2000)`;
    const first = await runCli(
      [
        'run',
        '--dir',
        dir,
        '--session',
        'run-wipe',
        '--shutdown-quiet',
        '500',
        '--listen',
        '127.0.0.1:0',
        '--',
        process.execPath,
        '-e',
        bot,
      ],
      { env },
    );
    assert.equal(first.code, 1, first.stdout + first.stderr);
    assert.equal(await headReason('run-wipe'), 'logout', first.stdout + first.stderr);
    assert.equal(await state('run-wipe'), 'logged_out');
    // The platform restarts it: restore writes no login, so the bot shows a QR code instead of failing with 401.
    const again = await runCli(
      [
        'run',
        '--dir',
        dir,
        '--session',
        'run-wipe',
        '--listen',
        '127.0.0.1:0',
        '--',
        process.execPath,
        '-e',
        `process.exit(require('node:fs').existsSync(${JSON.stringify(path.join(dir, 'creds.json'))}) ? 7 : 0)`,
      ],
      { env },
    );
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  it('run: a logout that cannot be stored (the database is gone) is retried until --shutdown-timeout, then an error', async () => {
    const dir = path.join(await tempDir('run-wipe-down'), 'auth');
    const go = path.join(await tempDir('run-wipe-down-go'), 'go');
    await writeSession(dir, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'wipe-down'], { env })).code, 0);
    const proxy = await tcpProxy(url);
    // The bot wipes its folder and exits once the test says so (after the database went away).
    const bot =
      `const fs = require('node:fs'); const wait = setInterval(() => { if (fs.existsSync(${JSON.stringify(go)})) {` +
      ` clearInterval(wait); fs.rmSync(${JSON.stringify(dir)}, { recursive: true }); process.exit(1); } }, 50);`;
    const child = startCli(
      [
        'run',
        '--dir',
        dir,
        '--session',
        'wipe-down',
        '--shutdown-quiet',
        '200',
        '--shutdown-timeout',
        '3000',
        '--listen',
        '127.0.0.1:0',
        '--',
        process.execPath,
        '-e',
        bot,
      ],
      { env: cliEnv(proxy.url) },
    );
    const ended = collect(child);
    try {
      // Watching, and the login seen: the keeper holds the lease.
      await waitFor(
        async () =>
          (
            await query<{ lease_owner: string | null }>(
              url,
              "SELECT lease_owner FROM baileys_keeper.sessions WHERE session_id = 'wipe-down'",
            )
          )[0]?.lease_owner
            ? true
            : null,
        20_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await proxy.close();
      proxy.cut();
      await writeFile(go, '');
      const result = await ended;
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.match(result.stdout + result.stderr, /the logout could not be stored/);
      assert.equal(await headReason('wipe-down'), 'backup', 'nothing was written: the login is still the head');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('the guard case: an empty disk at start with unpaired creds is refused, the login intact, no logout', async () => {
    const dir = await tempDir('unseen');
    await writeSession(dir, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'unseen'], { env })).code, 0);
    const empty = await tempDir('unseen-empty');
    await (await openAuth(empty)).saveCreds();
    const service = await startService(['sidecar', '--dir', empty, '--session', 'unseen'], env);
    try {
      await waitFor(async () => ((await service.metric('baileys_keeper_backups_total{result="refused"}')) >= 1 ? true : null), 15_000);
      assert.equal(await service.metric('baileys_keeper_session_events_total{event="logged_out"}'), 0);
    } finally {
      await service.stop();
    }
    assert.equal(await state('unseen'), 'paired');
    assert.equal(await headReason('unseen'), 'backup');
  });

  it('another account over a paired session is refused (exit 1, both numbers masked); --allow-replace stores it', async () => {
    const dir = await tempDir('swap');
    await writeSession(dir, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'acme-alice'], { env })).code, 0);
    const other = await tempDir('swap-other');
    const auth = await writeSession(other, { preKeys: 2, registered: false });
    await register(auth, '5511912341526:2@s.whatsapp.net');
    const refused = await runCli(['backup', '--dir', other, '--session', 'acme-alice'], { env });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /paired with 5511\*+4321 .*another login \(5511\*+1526\)/);
    const replaced = await runCli(['backup', '--dir', other, '--session', 'acme-alice', '--allow-replace'], { env });
    assert.equal(replaced.code, 0, replaced.stderr);
  });

  it('logout by command and by API; the previous login comes back by generation; a re-pairing is stored', async () => {
    const dir = await tempDir('by-hand');
    await writeSession(dir, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'by-hand'], { env })).code, 0);
    assert.equal((await runCli(['logout', '--session', 'by-hand'], { env })).code, 64, 'needs --yes');
    const out = await runCli(['logout', '--session', 'by-hand', '--yes'], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /logged out: generation 2/);
    assert.equal(await state('by-hand'), 'logged_out');
    assert.equal((await runCli(['logout', '--session', 'nobody', '--yes'], { env })).code, 3);
    // The dead login the bot kept is not stored again.
    const refused = await runCli(['backup', '--dir', dir, '--session', 'by-hand'], { env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /logged out at/);
    // A new pairing is.
    const fresh = await tempDir('by-hand-new');
    await register(await openAuth(fresh), REGISTERED_JID);
    assert.equal((await runCli(['backup', '--dir', fresh, '--session', 'by-hand'], { env })).code, 0);
    assert.equal(await state('by-hand'), 'paired');
    // … and it is the login the next restore writes.
    const next = await tempDir('by-hand-next');
    assert.equal((await runCli(['restore', '--dir', next, '--session', 'by-hand'], { env })).code, 0);
    assert.equal(await readFile(path.join(next, 'creds.json'), 'utf8'), await readFile(path.join(fresh, 'creds.json'), 'utf8'));

    // The API: a sidecar of another session answers for this one.
    const watched = await tempDir('api-watched');
    await writeSession(watched, { preKeys: 1 });
    const service = await startService(['sidecar', '--dir', watched, '--session', 'api-watched'], env);
    try {
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
      const post = (session: string, token = TOKEN) =>
        fetch(`http://127.0.0.1:${service.port}/api/session/logout?session_id=${session}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
      const answer = await post('by-hand');
      assert.equal(answer.status, 200);
      assert.deepEqual(await answer.json(), { session_id: 'by-hand', generation: 4 });
      // A logout through the API is an event like one the loop sees (log, counter, webhook).
      assert.equal(await service.metric('baileys_keeper_session_events_total{event="logged_out"}'), 1);
      assert.ok(service.output.some((line) => line.includes('session logged out') && line.includes('by-hand')));
      assert.equal((await post('by-hand')).status, 200, 'logged out already: the same generation');
      assert.equal((await post('nobody')).status, 404);
      assert.equal((await post('by-hand', 'wrong-token-0123456789012')).status, 401);
    } finally {
      await service.stop();
    }
    assert.equal(await state('by-hand'), 'logged_out');
  });

  it('one tenant of a sessions directory logs out; the others are untouched', async () => {
    const root = await tempDir('tenants');
    for (const name of ['t-one', 't-two', 't-three']) await writeSession(path.join(root, name), { preKeys: 2 });
    const service = await startService(['sidecar', '--sessions-dir', root, '--debounce', '100', '--max-delay', '200'], env);
    try {
      await waitFor(async () => ((await state('t-three').catch(() => null)) === 'paired' ? true : null), 20_000);
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
      await rm(path.join(root, 't-two', 'creds.json'));
      await waitFor(
        async () => ((await headReason('t-two')) === 'logout' ? true : null),
        15_000,
        () => service.output.join('\n'),
      );
    } finally {
      await service.stop();
    }
    assert.deepEqual(await Promise.all(['t-one', 't-two', 't-three'].map(state)), ['paired', 'logged_out', 'paired']);
  });
});
