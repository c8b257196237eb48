// Builds the project's images as CI proves them: against a local stand-in for the official Node
// base image (nothing can be pulled here), exactly through the build arguments the Dockerfiles
// document for offline builds: the init and sidecar images with npm installing offline from a cache
// warmed on the host, the Railway example with npm installing from a registry on loopback.
import { createReadStream } from 'node:fs';
import { cp, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../../harness/paths.js';
import { buildah, command } from './command.js';

/** The official image the Dockerfiles name by default, and the Node it carries (same as CI's). */
export const NODE_BASE = 'docker.io/library/node:24-bookworm-slim';
export const NODE_VERSION = '24.22.3';
export const NPM_VERSION = '11.21.2';
export const STAND_IN_LABEL = 'io.baileys-keeper.stand-in';

export const IMAGES = {
  sidecar: 'localhost/baileys-keeper-sidecar:test',
  init: 'localhost/baileys-keeper-init:test',
  railway: 'localhost/baileys-keeper-railway-example:test',
  /** The same Dockerfile with KEEPER_SOURCE=repo: the keeper built from this repository's source. */
  railwayRepo: 'localhost/baileys-keeper-railway-example-repo:test',
} as const;

interface BaseImage {
  labels: Record<string, string>;
  env: string[];
}

/** The base image's labels and env, or null when no image of that name is in local storage. */
async function localBase(): Promise<BaseImage | null> {
  return buildah(['inspect', '--type', 'image', NODE_BASE]).then(
    (out) => {
      const { config } = (JSON.parse(out) as { OCIv1: { config: { Labels?: Record<string, string>; Env?: string[] } } }).OCIv1;
      return { labels: config.Labels ?? {}, env: config.Env ?? [] };
    },
    () => null,
  );
}

/**
 * Makes the stand-in base unless it is already in local storage with the same Node version, and says
 * which base is used: the stand-in (built now or earlier) or a real image loaded under that name.
 */
export async function ensureBase(workDir: string): Promise<'stand-in built' | 'stand-in reused' | 'not a stand-in'> {
  const base = await localBase();
  if (base && !(STAND_IN_LABEL in base.labels)) return 'not a stand-in';
  if (base?.env.includes(`NODE_VERSION=${NODE_VERSION}`)) return 'stand-in reused';
  await command('bash', [path.join(REPO, 'test/images/make-stand-in-base.sh'), NODE_VERSION, NPM_VERSION, NODE_BASE, workDir], {
    echo: true,
  });
  return 'stand-in built';
}

/**
 * Fills `cache` with everything `npm ci` needs for the project (the init and sidecar builds), on the
 * host. (The Railway build installs from a local registry instead: registry.ts.)
 */
export async function warmNpmCache(cache: string): Promise<void> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'bk-npm-warm-'));
  try {
    await cp(path.join(REPO, 'package.json'), path.join(scratch, 'package.json'));
    await cp(path.join(REPO, 'package-lock.json'), path.join(scratch, 'package-lock.json'));
    await command('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--cache', cache], { cwd: scratch });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * `buildah build` of `dockerfile` as `tag` on the local stand-in base (never pulled), no layer cache;
 * chroot isolation keeps the host's network, so a build reaches a registry on loopback.
 */
function buildCommand(dockerfile: string, tag: string): string[] {
  return ['build', '--isolation=chroot', '--pull=never', '--layers=false', '-f', dockerfile, '-t', tag];
}

function offlineBuild(dockerfile: string, tag: string, context: string, cache: string, extra: string[] = []): Promise<string> {
  return buildah(
    [
      ...buildCommand(dockerfile, tag),
      '--build-arg',
      'npm_config_offline=true',
      '--build-arg',
      'npm_config_cache=/npm-cache',
      '--volume',
      `${cache}:/npm-cache`,
      ...extra,
      context,
    ],
    { echo: true },
  );
}

/** Builds the init and sidecar images from this repository, npm installing offline from `cache`. */
export async function buildImages(cache: string, version: string): Promise<void> {
  const versionArg = ['--build-arg', `VERSION=${version}`];
  await offlineBuild(path.join(REPO, 'Dockerfile.sidecar'), IMAGES.sidecar, REPO, cache, versionArg);
  await offlineBuild(path.join(REPO, 'Dockerfile.init'), IMAGES.init, REPO, cache, versionArg);
}

/**
 * Builds deploy/railway/Dockerfile as a user would: in the unmodified example bot's directory, the
 * keeper `keeperVersion` and the bot's dependencies installed by npm from `registry` (the
 * `npm_config_registry` build argument the Dockerfile documents for mirrors and offline builds), tini
 * from Debian's archive. Rejects with buildah's output when the build fails.
 */
export async function buildRailwayImage(registry: string, keeperVersion: string): Promise<string> {
  return buildah(
    [
      ...buildCommand(path.join(REPO, 'deploy/railway/Dockerfile'), IMAGES.railway),
      '--build-arg',
      'KEEPER_SOURCE=package',
      '--build-arg',
      `npm_config_registry=${registry}`,
      '--build-arg',
      `KEEPER_VERSION=${keeperVersion}`,
      path.join(REPO, 'examples/baileys-bot'),
    ],
    { echo: true },
  );
}

/**
 * Builds deploy/railway/Dockerfile with KEEPER_SOURCE=repo, as a user deploying before any release
 * would: in the example bot's directory, the keeper built from `sourceUrl` (a .tar.gz of this
 * repository, as GitHub's archive of a ref is) by `npm ci` and `npm pack` inside the build; every npm
 * install (the keeper's build dependencies, the bot's) from `registry`. Rejects with buildah's output
 * when the build fails.
 */
export async function buildRailwayImageFromRepo(registry: string, sourceUrl: string): Promise<string> {
  return buildah(
    [
      ...buildCommand(path.join(REPO, 'deploy/railway/Dockerfile'), IMAGES.railwayRepo),
      '--build-arg',
      'KEEPER_SOURCE=repo',
      '--build-arg',
      `KEEPER_SOURCE_URL=${sourceUrl}`,
      '--build-arg',
      `npm_config_registry=${registry}`,
      path.join(REPO, 'examples/baileys-bot'),
    ],
    { echo: true },
  );
}

export interface SourceArchive {
  /** http://127.0.0.1:PORT/baileys-keeper-test.tar.gz */
  url: string;
  /** The archive on disk. */
  file: string;
  /** Stops serving it; resolves once the server is closed. */
  stop(): Promise<void>;
}

/**
 * Serves a .tar.gz of this repository's working tree over HTTP on loopback, laid out as GitHub's
 * archive of a ref is (every path under one top-level directory): the files git tracks or would
 * track (`git ls-files --cached --others --exclude-standard`), so what is not committed yet is built
 * too, and nothing git ignores (node_modules, build output). Rejects when git or tar fails.
 */
export async function serveSourceArchive(workDir: string): Promise<SourceArchive> {
  const list = path.join(workDir, 'source-files.txt');
  const files = (await command('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO }))
    .split('\0')
    .filter(Boolean);
  // A tracked file deleted in the working tree is not part of it.
  const present = [];
  for (const file of files)
    if (
      await stat(path.join(REPO, file)).then(
        (info) => info.isFile(),
        () => false,
      )
    )
      present.push(file);
  await writeFile(list, `${present.join('\n')}\n`);
  const file = path.join(workDir, 'baileys-keeper-test.tar.gz');
  await command('tar', ['-czf', file, '-C', REPO, '--transform', 's,^,baileys-keeper-test/,', '--verbatim-files-from', '-T', list]);
  const server = http.createServer((request, response) => {
    if (request.url !== '/baileys-keeper-test.tar.gz') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/gzip' });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/baileys-keeper-test.tar.gz`,
    file,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
