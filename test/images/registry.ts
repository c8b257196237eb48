// A local npm registry for the Railway image's builds (verdaccio on loopback): the keeper's package as
// `npm pack` makes it and `npm publish` uploads it, the example bot's dependencies, and this
// repository's (for the keeper built from source), so the builds install from the network as on
// Railway, yet reach nothing but this machine. The dependencies are pulled into the registry's storage on the host first, through an uplink to the
// registry the host's npm uses (as warmNpmCache fills the npm cache); the build then runs against the
// registry restarted with no uplink at all, so whatever it installs was stored here.
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../../harness/paths.js';
import { freePort } from '../support/net.js';
import { command } from './command.js';

const VERDACCIO = path.join(REPO, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
const BOT = path.join(REPO, 'examples', 'baileys-bot');

export interface Registry {
  /** http://127.0.0.1:PORT/, for npm's `registry` setting. */
  url: string;
  /** Stops the registry; resolves once its process has exited. */
  stop(): Promise<void>;
}

/**
 * Starts verdaccio on a free loopback port with its storage in `dir/storage`. With `uplink` (a registry
 * URL) it proxies every package it does not hold to it; without, it serves only what it holds. Anyone
 * may read; only a user added by `login` may publish. Resolves once it answers; rejects with its output
 * if it exits or does not answer within 60 s.
 */
export async function startRegistry(dir: string, uplink?: string): Promise<Registry> {
  const port = await freePort();
  await mkdir(path.join(dir, 'storage'), { recursive: true });
  const config = {
    storage: path.join(dir, 'storage'),
    auth: { htpasswd: { file: path.join(dir, 'htpasswd') } },
    uplinks: uplink ? { upstream: { url: uplink, timeout: '60s' } } : {},
    packages: {
      '**': { access: '$all', publish: '$authenticated', ...(uplink ? { proxy: 'upstream' } : {}) },
    },
    web: { enable: false },
    log: { type: 'stdout', format: 'pretty', level: 'warn' },
  };
  // YAML is a superset of JSON: verdaccio reads this as its YAML config.
  const configFile = path.join(dir, 'config.yaml');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [VERDACCIO, '--config', configFile, '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (gone) throw new Error(`verdaccio exited before answering:\n${output}`);
    if ((await fetch(`${url}-/ping`).catch(() => null))?.ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`verdaccio did not answer on ${url} within 60 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    stop: async () => {
      if (!gone) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Adds a user to the registry as `npm adduser` does and writes an npmrc holding its token into `dir`.
 * Resolves with that npmrc's path (for npm's --userconfig); rejects when the registry refuses.
 */
async function login(registry: Registry, dir: string): Promise<string> {
  const name = `publisher-${process.pid}-${Date.now()}`;
  const response = await fetch(`${registry.url}-/user/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: 'image-test-password' }),
  });
  const body = (await response.json()) as { token?: string };
  if (!response.ok || !body.token) throw new Error(`the registry refused to add a user: ${response.status} ${JSON.stringify(body)}`);
  const npmrc = path.join(dir, 'npmrc');
  await writeFile(npmrc, `//${new URL(registry.url).host}/:_authToken=${body.token}\n`, { mode: 0o600 });
  return npmrc;
}

/**
 * Puts into the registry's storage everything `npm ci` needs for the example bot (`--omit=dev`, as the
 * Railway Dockerfile installs it) and for this repository (everything: the keeper built from source,
 * KEEPER_SOURCE=repo): the registry (started with an uplink) fetches it for installs on the host with
 * an empty npm cache, so every packument and tarball passes through it. Rejects with npm's output when
 * an install fails.
 */
export async function fillRegistry(registry: Registry): Promise<void> {
  for (const { dir, omitDev } of [
    { dir: BOT, omitDev: true },
    { dir: REPO, omitDev: false },
  ]) {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'bk-registry-fill-'));
    try {
      await cp(path.join(dir, 'package.json'), path.join(scratch, 'package.json'));
      await cp(path.join(dir, 'package-lock.json'), path.join(scratch, 'package-lock.json'));
      await command(
        'npm',
        [
          'ci',
          ...(omitDev ? ['--omit=dev'] : []),
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--registry',
          registry.url,
          '--cache',
          path.join(scratch, 'cache'),
        ],
        { cwd: scratch },
      );
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

/**
 * `npm pack` of this repository (its prepack writes the bundle) into `dir`, then `npm publish` of that
 * tarball to the registry under a freshly added user. Resolves with the tarball's path and the
 * published version; rejects with npm's output when either fails (a version already published there
 * fails: clear the registry's storage of the package first).
 */
export async function publishKeeper(registry: Registry, dir: string): Promise<{ tarball: string; version: string }> {
  await mkdir(dir, { recursive: true });
  const packed = JSON.parse(await command('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO })) as Array<{
    filename: string;
    version: string;
  }>;
  const tarball = path.join(dir, packed[0]!.filename);
  const npmrc = await login(registry, dir);
  await command('npm', ['publish', tarball, '--registry', registry.url, '--userconfig', npmrc, '--no-provenance'], { cwd: dir });
  return { tarball, version: packed[0]!.version };
}
