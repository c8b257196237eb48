// The npm package as a user gets it: `npm pack`, then installed on a clean prefix (no repository, no
// dependencies around) and run against a real PostgreSQL — through `npx --package` stopped by Ctrl-C,
// and as a bot's dependency started by `npm start` and stopped by SIGTERM, as Railway's builders
// (Nixpacks, Railpack) run it: restore, the bot, backups while it runs, the final backup.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { writeSession } from '../../harness/baileys.js';
import { collect } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { REPO } from '../../harness/paths.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';

const run = promisify(execFile);
// npm and npx as the user has them on PATH (the node running the tests comes first there).
const NPM = 'npm';
const NPX = 'npx';
const BOT = path.join(REPO, 'build', 'test', 'support', 'mini-bot.js');
const MAX_TARBALL_BYTES = 1024 * 1024;

describe('the npm package', async () => {
  const url = await freshDatabase('npm-package');
  const home = await tempDir('npm-home');
  let tarball = '';
  /** A user's environment: node and npm on PATH, a home of its own, nothing of this repository or its KEEPER_* settings. */
  const userEnv = (extra: Record<string, string> = {}) => ({
    PATH: [path.join(home, 'prefix', 'bin'), path.dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
    HOME: home,
    npm_config_cache: path.join(home, 'cache'),
    npm_config_update_notifier: 'false',
    ...extra,
  });

  before(async () => {
    const { stdout } = await run(NPM, ['pack', '--pack-destination', home, '--json'], {
      cwd: REPO,
      env: { ...process.env, PATH: userEnv().PATH },
      maxBuffer: 16 * 1024 * 1024,
    });
    tarball = path.join(home, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  });

  it('holds the single-file bundle and its licences and nothing else, in at most 1 MiB, with no dependencies', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    assert.deepEqual(stdout.trim().split('\n').sort(), [
      'package/LICENSE',
      'package/README.md',
      'package/dist/THIRD-PARTY-LICENSES.txt',
      'package/dist/baileys-keeper.mjs',
      'package/package.json',
    ]);
    assert.ok((await stat(tarball)).size <= MAX_TARBALL_BYTES, `${(await stat(tarball)).size} bytes`);
    const { stdout: manifest } = await run('tar', ['-xzOf', tarball, 'package/package.json']);
    const json = JSON.parse(manifest) as Record<string, unknown>;
    assert.equal(json['dependencies'], undefined, 'everything the CLI needs is inside the bundle');
    assert.equal(json['private'], undefined);
    assert.deepEqual(json['bin'], { 'baileys-keeper': 'dist/baileys-keeper.mjs' });
    for (const field of ['repository', 'keywords', 'license', 'engines']) assert.ok(json[field], field);
  });

  it('installs globally on a clean prefix offline, and without DATABASE_URL says what to set', async () => {
    await run(NPM, ['install', '--global', '--prefix', path.join(home, 'prefix'), '--offline', '--no-audit', '--no-fund', tarball], {
      env: userEnv(),
    });
    const work = path.join(home, 'work');
    await mkdir(work, { recursive: true });
    const version = await run('baileys-keeper', ['--version'], { env: userEnv(), cwd: work });
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    const status = await run('baileys-keeper', ['status'], { env: userEnv(), cwd: work }).then(
      () => assert.fail('status without a database succeeded'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(status.code, 2);
    assert.match(status.stderr, /set DATABASE_URL \/ --database-url to a PostgreSQL server/);
  });

  /**
   * Starts `command args` in its own process group in `cwd` for session `session` (seeded with a
   * registered login first), waits for the bot, stops it with `stop`, and checks that the login was
   * restored before the bot started and that the final backup holds everything the bot wrote.
   * Resolves with how the command ended and what the directory holds.
   */
  async function playBot(session: string, cwd: string, command: string, args: string[], stop: (child: ChildProcess) => void) {
    const env = userEnv({ DATABASE_URL: url, KEEPER_SESSION_ID: session, KEEPER_LISTEN: '127.0.0.1:0' });
    const source = path.join(cwd, 'seed');
    await writeSession(source, { preKeys: 4 });
    await run('baileys-keeper', ['backup', '--dir', source], { env, cwd });
    const dir = path.join(cwd, 'auth_info');
    const child = spawn(command, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let said = '';
    child.stdout!.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const result = collect(child);
    await waitFor(
      () => (said.includes('bot: ready') ? true : null),
      60_000,
      () => `the bot never started:\n${said}`,
    );
    assert.ok((await readdir(dir)).includes('creds.json'), 'the login was restored before the bot started');
    stop(child);
    const ended = await result;
    assert.match(ended.stdout, /the bot's process group has exited: final backup/);
    const written = await readTree(dir);
    assert.deepEqual(diffTrees(await storedHead(url, session), written), [], 'the final backup holds everything the bot wrote');
    return { ...ended, written };
  }

  it('npx --package TARBALL baileys-keeper run -- node bot.js: restores, backs up, and Ctrl-C stores the last write', async () => {
    const work = path.join(home, 'npx');
    await mkdir(work, { recursive: true });
    const dir = path.join(work, 'auth_info');
    const args = ['--yes', '--package', tarball, 'baileys-keeper', 'run', '--dir', dir, '--', process.execPath, BOT, dir, 'wait-term'];
    // Ctrl-C: the terminal signals the whole foreground process group (npx, the keeper, the bot).
    const ended = await playBot('npx', work, NPX, args, (child) => process.kill(-child.pid!, 'SIGINT'));
    assert.ok(ended.signal === 'SIGINT' || ended.code === 130, `ended by ${ended.signal ?? ended.code}`);
  });

  it('a bot that depends on the package: npm start ("exec baileys-keeper run -- …") stopped by SIGTERM to npm alone', async () => {
    const project = path.join(home, 'bot-project');
    await mkdir(project, { recursive: true });
    const dir = path.join(project, 'auth_info');
    // `exec`: npm passes SIGTERM to the shell running the start script; without exec the shell would
    // die and leave the keeper running without ever telling it (no final backup).
    const manifest = {
      name: 'my-bot',
      version: '1.0.0',
      private: true,
      dependencies: { 'baileys-keeper': `file:${tarball}` },
      scripts: { start: `exec baileys-keeper run --dir ${dir} -- ${process.execPath} ${BOT} ${dir} wait-term` },
    };
    await writeFile(path.join(project, 'package.json'), JSON.stringify(manifest, null, 2));
    await run(NPM, ['install', '--offline', '--no-audit', '--no-fund'], { env: userEnv(), cwd: project });
    // A platform stopping the container signals its PID 1 (npm) only.
    const ended = await playBot('npm-start', project, NPM, ['start'], (child) => child.kill('SIGTERM'));
    assert.equal(ended.code, 0, ended.stdout);
    assert.match(ended.stdout, /bot: stopped/);
    assert.ok(ended.written.has('session-5511000000099.0.json'), 'the bot wrote its last key at SIGTERM, and it is stored');
  });
});
