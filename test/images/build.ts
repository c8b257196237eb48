// Builds the project's images as CI proves them: against a local stand-in for the official Node
// base image (nothing can be pulled here), with npm installing offline from a cache warmed on the
// host, exactly through the build arguments the Dockerfiles document for offline builds.
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

/** Fills `cache` with everything `npm ci` needs for the project and the example bot, on the host. */
export async function warmNpmCache(cache: string): Promise<void> {
  for (const [dir, flags] of [
    [REPO, []],
    [path.join(REPO, 'examples/baileys-bot'), ['--omit=dev']],
  ] as const) {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'bk-npm-warm-'));
    try {
      await cp(path.join(dir, 'package.json'), path.join(scratch, 'package.json'));
      await cp(path.join(dir, 'package-lock.json'), path.join(scratch, 'package-lock.json'));
      await command('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--cache', cache, ...flags], { cwd: scratch });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

function offlineBuild(dockerfile: string, tag: string, context: string, cache: string, extra: string[] = []): Promise<string> {
  return buildah(
    [
      'build',
      '--isolation=chroot',
      '--pull=never',
      '--layers=false',
      '-f',
      dockerfile,
      '-t',
      tag,
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

export async function buildImages(cache: string, version: string): Promise<void> {
  const versionArg = ['--build-arg', `VERSION=${version}`];
  await offlineBuild(path.join(REPO, 'Dockerfile.sidecar'), IMAGES.sidecar, REPO, cache, versionArg);
  await offlineBuild(path.join(REPO, 'Dockerfile.init'), IMAGES.init, REPO, cache, versionArg);
  // The Railway Dockerfile as a user would use it: in an unmodified bot's directory, taking the
  // keeper from the sidecar image just built.
  await offlineBuild(path.join(REPO, 'deploy/railway/Dockerfile'), IMAGES.railway, path.join(REPO, 'examples/baileys-bot'), cache, [
    '--build-arg',
    `KEEPER_IMAGE=${IMAGES.sidecar}`,
  ]);
}
