// Builds the project's images as CI proves them: against a local stand-in for the official Node
// base image (nothing can be pulled here), exactly through the build arguments the Dockerfiles
// document for offline builds: the init and sidecar images with npm installing offline from a cache
// warmed on the host, the Railway example with npm installing from a registry on loopback.
import { cp, mkdtemp, rm } from 'node:fs/promises';
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
      `npm_config_registry=${registry}`,
      '--build-arg',
      `KEEPER_VERSION=${keeperVersion}`,
      path.join(REPO, 'examples/baileys-bot'),
    ],
    { echo: true },
  );
}
