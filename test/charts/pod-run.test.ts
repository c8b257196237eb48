// The rendered pod, run for real: the chart's restore init container and sidecar as `node dist/cli.js`
// processes with exactly their rendered args and env (the Secret's DATABASE_URL pointed at the test
// PostgreSQL), the real Baileys writer as the bot, started and stopped in the order the sidecar mode
// gives. Two pods in a row, as a deploy does: nothing the bot wrote is lost, and the second pod's bot
// starts on the first pod's login.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cliEnv, collect, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { LocalPod } from '../support/charts/local-pod.js';
import { resolveEnv, type Container } from '../support/charts/pod.js';
import { CHART, helmTemplate, type K8sObject } from '../support/charts/render.js';
import { CHURN_BOT } from '../../harness/paths.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

interface Bot {
  out: string;
}

// The bot keeps writing this long after SIGTERM (closing its socket, flushing queues). Longer than the
// classic sidecar's quiet-wait cap (half of SHUTDOWN_TIMEOUT_MS): without the preStop hook holding the
// sidecar's SIGTERM back, its final backup would come before the bot's last writes.
const LINGER_MS = 4000;
const SHUTDOWN_TIMEOUT_MS = 6000;
const BOT_STOP_SECONDS = 6;

/** A values file: the bot's stop time and the sidecar's shutdown budget, short enough for a test. */
async function shortShutdown(): Promise<string> {
  const file = path.join(await tempDir('pod-values'), 'values.json');
  await writeFile(file, JSON.stringify({ bot: { stopSeconds: BOT_STOP_SECONDS }, sidecar: { shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS } }));
  return file;
}

/** One pod's life: start, let the bot churn until the sidecar has stored a few generations, terminate. */
async function livePod(shape: string, databaseUrl: string, session: string, seed: number) {
  const objects = await helmTemplate([path.join(CHART, 'ci', `${shape}-values.yaml`), await shortShutdown()], {
    'secret.create.databaseUrl': databaseUrl,
    'session.id': session,
  });
  const pod = await LocalPod.create(objects, await tempDir(`pod-${shape}`));
  const botDir = pod.hostPath('bot', pod.container('bot').volumeMounts!.find((mount) => mount.name === 'auth')!.mountPath);
  const bot: Bot = { out: '' };
  let restoredAtBotStart: Map<string, string> | null = null;
  try {
    await pod.start((container, hostDir) => {
      // The bot's own view of its auth directory, through its own mount.
      const dir = hostDir(container.volumeMounts!.find((mount) => mount.name === 'auth')!.mountPath);
      restoredAtBotStart = readTreeNow(dir);
      const child = spawn(process.execPath, [CHURN_BOT, dir, '--rate', '20', '--seed', String(seed), '--linger-ms', String(LINGER_MS)], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.stdout.on('data', (chunk: Buffer) => (bot.out += chunk.toString()));
      return child;
    });
    await waitFor(
      () => (bot.out.includes('ready') ? true : null),
      30_000,
      () => `the bot did not start: ${bot.out}`,
    );
    const sidecar = pod.service('sidecar');
    const before = await sidecar.metric('baileys_keeper_backups_total{result="success"}');
    // Backups happen while the bot runs (not only at shutdown).
    await waitFor(
      async () => ((await sidecar.metric('baileys_keeper_backups_total{result="success"}')) >= before + 2 ? true : null),
      60_000,
      () => sidecar.output.join('\n'),
    );
    const ends = await pod.terminate();
    return { pod, botDir, bot, ends, restoredAtBotStart, sidecarOutput: sidecar.output };
  } catch (error) {
    pod.kill();
    throw error;
  }
}

/** name → content of the files in `dir`, read synchronously (before the bot process exists). */
function readTreeNow(dir: string): Map<string, string> {
  return new Map(
    readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
      .map((entry) => [entry.name, readFileSync(path.join(dir, entry.name), 'utf8')]),
  );
}

function creds(tree: Map<string, string>): { registrationId: number; me?: { id: string } } {
  return JSON.parse(tree.get('creds.json') ?? 'null') as { registrationId: number; me?: { id: string } };
}

for (const shape of ['native', 'classic']) {
  describe(`pod run: ${shape} sidecar`, async () => {
    const url = await freshDatabase(`pod_${shape}`);
    const session = `pod-${shape}`;

    it(
      'restores before the bot starts, backs up while it runs, and ' +
        'loses no write of a bot that writes on after SIGTERM, over two pods',
      async () => {
        // Pod 1: a new session. The restore finds nothing, the bot pairs, the sidecar stores its churn.
        const first = await livePod(shape, url, session, 5);
        assert.equal(first.ends.get('bot')!.code, 0, 'the bot stopped cleanly');
        assert.equal(first.ends.get('sidecar')!.code, 0, `the sidecar's final backup succeeded:\n${first.sidecarOutput.join('\n')}`);
        assert.match(first.bot.out, /lingering\nstopped \d+/, 'the bot kept writing after SIGTERM');
        const firstDir = await readTree(first.botDir);
        assert.deepEqual(diffTrees(await storedHead(url, session), firstDir), [], 'the stored head is exactly the directory the bot left');
        const events = first.pod.events;
        assert.ok(
          events.indexOf('restore exited 0') < events.indexOf('bot started'),
          `restore finished before the bot started: ${events.join(', ')}`,
        );
        if (shape === 'native') {
          assert.ok(events.indexOf('sidecar probe passed') < events.indexOf('bot started'), 'the bot starts once the sidecar watches');
          assert.ok(
            events.indexOf('bot exited 0') < events.indexOf('sidecar SIGTERM'),
            `native: the sidecar gets SIGTERM after the bot exited: ${events.join(', ')}`,
          );
        } else {
          // Kubernetes stops both containers at once: the bot gets SIGTERM, the sidecar runs its preStop hook.
          assert.ok(
            events.indexOf('sidecar preStop') >= 0 && events.indexOf('sidecar preStop') < events.indexOf('bot exited 0'),
            `classic: the sidecar's hook starts with the bot's SIGTERM: ${events.join(', ')}`,
          );
          assert.ok(
            events.indexOf('bot exited 0') < events.indexOf('sidecar SIGTERM'),
            `classic: the hook holds the sidecar's SIGTERM back until the bot is gone: ${events.join(', ')}`,
          );
        }
        assert.equal(
          events.some((event) => event.endsWith('SIGKILL')),
          false,
          `nothing outlived the grace period: ${events.join(', ')}`,
        );
        assert.ok(creds(firstDir).me, 'the bot paired');

        // Pod 2: the next deploy, on a new empty volume. The restore brings back pod 1's last state
        // before the bot starts; the bot keeps its identity and churns on; nothing is lost again.
        const second = await livePod(shape, url, session, 6);
        assert.deepEqual(diffTrees(second.restoredAtBotStart!, firstDir), [], 'the bot started on exactly what pod 1 left');
        assert.equal(second.ends.get('sidecar')!.code, 0, second.sidecarOutput.join('\n'));
        const secondDir = await readTree(second.botDir);
        assert.equal(creds(secondDir).registrationId, creds(firstDir).registrationId, 'same identity: no new pairing');
        assert.deepEqual(diffTrees(await storedHead(url, session), secondDir), []);
        assert.notDeepEqual(secondDir, firstDir, 'pod 2 wrote new keys (and they were stored)');
      },
    );
  });
}

describe('pod run: the API token from the mounted Secret, and the helm test script', async () => {
  const url = await freshDatabase('pod_token');

  it('the sidecar answers the session API with the token file it was given; the helm test script passes, then fails once it is gone', async (t) => {
    const objects = await helmTemplate([path.join(CHART, 'ci', 'classic-values.yaml'), await shortShutdown()], {
      'secret.create.databaseUrl': url,
      'session.id': 'pod-token',
    });
    const pod = await LocalPod.create(objects, await tempDir('pod-token'));
    t.after(() => pod.kill());
    const env = pod.env(pod.container('sidecar'));
    const token = (await readFile(env['KEEPER_API_TOKEN_FILE']!, 'utf8')).trim();
    assert.equal(token, 'not-a-real-token', 'the file holds the Secret value');
    await pod.start((container, hostDir) =>
      spawn(process.execPath, [CHURN_BOT, hostDir(container.volumeMounts![0]!.mountPath), '--rate', '5'], { stdio: 'ignore' }),
    );
    const sidecar = pod.service('sidecar');
    await waitFor(async () => ((await sidecar.get('/readyz')).status === 200 ? true : null), 60_000);
    const answer = await fetch(`http://127.0.0.1:${sidecar.port}/api/session/status`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(answer.status, 200);
    const wrong = await fetch(`http://127.0.0.1:${sidecar.port}/api/session/status`, { headers: { authorization: 'Bearer wrong' } });
    assert.equal(wrong.status, 401);

    // The `helm test` pod's own script, run with node against this sidecar (its URL moved to loopback).
    const testPod = objects.find((object) => object.kind === 'Pod') as K8sObject & { spec: { containers: Container[] } };
    const [node, ...script] = testPod.spec.containers[0]!.command!;
    assert.equal(node, 'node');
    const helmTest = (url: string, seconds: string) =>
      collect(
        spawn(process.execPath, script, {
          env: { ...resolveEnv(testPod.spec.containers[0]!, objects), READYZ_URL: url, TIMEOUT_SECONDS: seconds },
        }),
      );
    const passed = await helmTest(`http://127.0.0.1:${sidecar.port}/readyz`, '30');
    assert.equal(passed.code, 0, passed.stderr);
    assert.match(passed.stdout, /^ok: .* answered 200.*the sidecar holds the lease/);

    // The test pod's doctor: the rendered container's args and env, as a real process, its auth directory
    // an empty one of its own (as the pod's emptyDir is).
    const doctorContainer = testPod.spec.containers.find((candidate) => candidate.name === 'doctor')!;
    const doctorDir = path.join(await tempDir('pod-token-doctor'), 'auth_info');
    await mkdir(doctorDir);
    const doctor = await runCli(doctorContainer.args!, { env: { ...resolveEnv(doctorContainer, objects), KEEPER_DIR: doctorDir } });
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /^OK +stored rows: \d+ stored file versions of session pod-token verified/m);
    assert.match(doctor.stdout, /^OK +lease: held by \S+ until /m, "the pod's sidecar holds the lease");
    assert.doesNotMatch(doctor.stdout, /^FAIL/m);

    // A second sidecar of the same session stands by (the pod's holds the lease): /readyz is 200 there
    // too, but it is not the writer, and helm test says so.
    const standbyDir = path.join(await tempDir('pod-token-standby'), 'auth_info');
    await mkdir(standbyDir);
    const standby = await startService(['sidecar'], { ...pod.env(pod.container('sidecar')), KEEPER_DIR: standbyDir });
    try {
      await waitFor(
        async () => ((await standby.get('/readyz')).status === 200 ? true : null),
        60_000,
        () => standby.output.join('\n'),
      );
      const notWriter = await helmTest(`http://127.0.0.1:${standby.port}/readyz`, '3');
      assert.equal(notWriter.code, 1, `helm test fails on a sidecar standing by: ${notWriter.stdout}`);
      assert.match(notWriter.stderr, /lease_held is not 1/);
    } finally {
      standby.child.kill('SIGTERM');
      const killer = setTimeout(() => standby.child.kill('SIGKILL'), 30_000);
      const end = await standby.exited;
      clearTimeout(killer);
      assert.equal(end.code, 0, `the standby sidecar stopped on SIGTERM:\n${standby.output.join('\n')}`);
    }

    const ends = await pod.terminate();
    assert.equal(ends.get('sidecar')!.code, 0);
    const failed = await helmTest(`http://127.0.0.1:${sidecar.port}/readyz`, '1');
    assert.equal(failed.code, 1, 'helm test fails when the sidecar does not answer');
    assert.match(failed.stderr, /did not answer 200 in time/);
  });
});

describe('pod run: encryption at rest with the key from the Secret', async () => {
  const url = await freshDatabase('pod_encrypted');
  const key = randomBytes(32).toString('base64');

  it('the pod stores ciphertext only; restoring needs the same key', async (t) => {
    const objects = await helmTemplate([path.join(CHART, 'ci', 'native-values.yaml')], {
      'secret.create.databaseUrl': url,
      'secret.create.encryptionKey': key,
      'session.id': 'pod-encrypted',
    });
    const pod = await LocalPod.create(objects, await tempDir('pod-encrypted'));
    t.after(() => pod.kill());
    for (const name of ['restore', 'sidecar']) {
      const file = pod.env(pod.container(name))['KEEPER_ENCRYPTION_KEY_FILE'];
      assert.ok(file, `${name} is given the key as a file`);
      assert.equal((await readFile(file, 'utf8')).trim(), key);
    }
    assert.equal(pod.env(pod.container('bot'))['KEEPER_ENCRYPTION_KEY_FILE'], undefined, 'the bot is not given the key');

    const botDir = pod.hostPath('bot', pod.container('bot').volumeMounts!.find((mount) => mount.name === 'auth')!.mountPath);
    await pod.start((container, hostDir) =>
      spawn(
        process.execPath,
        [CHURN_BOT, hostDir(container.volumeMounts!.find((mount) => mount.name === 'auth')!.mountPath), '--rate', '10'],
        { stdio: 'ignore' },
      ),
    );
    const sidecar = pod.service('sidecar');
    await waitFor(
      async () => ((await sidecar.metric('baileys_keeper_backups_total{result="success"}')) >= 2 ? true : null),
      60_000,
      () => sidecar.output.join('\n'),
    );
    const ends = await pod.terminate();
    assert.equal(ends.get('sidecar')!.code, 0, sidecar.output.join('\n'));
    const left = await readTree(botDir);

    // What PostgreSQL holds: every row under a key id, no creds.json text in clear.
    const rows = await query<{ key_id: string | null; content: Buffer }>(
      url,
      "SELECT key_id, content FROM baileys_keeper.files WHERE session_id = 'pod-encrypted'",
    );
    assert.ok(rows.length > 0);
    assert.ok(
      rows.every((row) => row.key_id !== null),
      'every stored row is encrypted',
    );
    assert.ok(left.get('creds.json')!.includes('"registrationId"'));
    assert.ok(
      rows.every((row) => !row.content.toString('latin1').includes('"registrationId"')),
      'no creds text in the database',
    );

    // A restore with the pod's key gives back exactly what the bot left; without it, exit 4 and nothing written.
    const target = path.join(await tempDir('pod-encrypted-restore'), 'auth_info');
    const restored = await runCli(['restore', '--dir', target, '--session', 'pod-encrypted'], {
      env: cliEnv(url, { KEEPER_ENCRYPTION_KEY: key }),
    });
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    assert.deepEqual(diffTrees(await readTree(target), left), []);
    const keyless = path.join(await tempDir('pod-encrypted-keyless'), 'auth_info');
    const refused = await runCli(['restore', '--dir', keyless, '--session', 'pod-encrypted'], { env: cliEnv(url) });
    assert.equal(refused.code, 4, refused.stdout + refused.stderr);
    assert.equal(
      await readdir(keyless).then(
        (names) => names.length,
        () => 0,
      ),
      0,
    );
  });
});
