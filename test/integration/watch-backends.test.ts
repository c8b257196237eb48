// The watch module (src/watch/) on real directories: what each backend reports, the symlink rule, the
// names left out, the directory itself going away, and the native → polling fallback on a node whose
// inotify instances are used up (the fleet, the auth directory's watcher and doctor's probe all open
// their watchers through it).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { chown, mkdir, rename, rm, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { after, describe, it } from 'node:test';
import { REPO } from '../../harness/paths.js';
import { waitFor } from '../../harness/sidecar.js';
import { type FallbackHandlers, WatchOpener, type WatchMode } from '../../src/watch/chokidar.js';
import { probeNativeWatching } from '../../src/watch/probe.js';
import { DirectoryWatcher } from '../../src/watcher.js';
import { tempDir } from '../support/fs.js';
import { exhaustInotify, systemPython } from '../support/inotify.js';
import { openToAll, otherUser } from '../support/other-user.js';

/** Handlers that write down what a watch reports, as "name:event", "removed", "error" or "fell back". */
function recorder() {
  const seen: string[] = [];
  const handlers: FallbackHandlers = {
    entry: (name, event) => void seen.push(`${name}:${event}`),
    removed: () => void seen.push('removed'),
    error: () => void seen.push('error'),
    fellBack: () => void seen.push('fell back'),
  };
  /** Resolves once `what` was reported; fails after a few seconds saying what was. */
  const reported = (what: string) =>
    waitFor(
      () => (seen.includes(what) ? true : null),
      5_000,
      () => `waiting for ${what}; reported: ${seen.join(', ') || 'nothing'}`,
    );
  return { seen, handlers, reported };
}

async function opened(mode: WatchMode, dir: string, handlers: FallbackHandlers, ignore?: (name: string) => boolean) {
  const watch = await new WatchOpener(mode, 50).open(dir, handlers, ignore);
  after(() => watch.close());
  return watch;
}

describe('the watch module on real directories', () => {
  for (const mode of ['native', 'poll'] as const) {
    it(`--watch ${mode}: the directory's own entries are reported, not what is below them`, async () => {
      const dir = await tempDir(`watch-${mode}`);
      const { seen, handlers, reported } = recorder();
      const watch = await opened(mode, dir, handlers);
      assert.equal(watch.backend, mode === 'poll' ? 'polling' : 'native');
      await writeFile(path.join(dir, 'creds.json'), '{}');
      await reported('creds.json:add');
      await writeFile(path.join(dir, 'creds.json'), '{"changed":true}');
      await reported('creds.json:change');
      await unlink(path.join(dir, 'creds.json'));
      await reported('creds.json:unlink');
      // A session folder of a sessions directory: its arrival is seen, its files are not.
      await mkdir(path.join(dir, 'alice'));
      await reported('alice:addDir');
      await writeFile(path.join(dir, 'alice', 'creds.json'), '{}');
      await writeFile(path.join(dir, 'last.json'), '{}');
      await reported('last.json:add');
      assert.equal(seen.filter((event) => event === 'creds.json:add').length, 1, 'alice/creds.json is not reported');
      assert.ok(!seen.includes('fell back'), 'nothing to fall back from');
    });
  }

  it('a symlinked directory is watched where the link points', async () => {
    const real = await tempDir('watch-real');
    const link = path.join(await tempDir('watch-link'), 'auth_info');
    await symlink(real, link);
    const { handlers, reported } = recorder();
    const watch = await opened('auto', link, handlers);
    assert.equal(watch.dir, real);
    await writeFile(path.join(link, 'session-1.json'), '{}');
    await reported('session-1.json:add');
  });

  it('names the caller leaves out are never reported', async () => {
    const dir = await tempDir('watch-ignore');
    const { seen, handlers, reported } = recorder();
    await opened('native', dir, handlers, (name) => name.endsWith('.tmp'));
    await writeFile(path.join(dir, 'creds.json.tmp'), '{}');
    await writeFile(path.join(dir, 'creds.json'), '{}');
    await reported('creds.json:add');
    assert.deepEqual(
      seen.filter((event) => event.startsWith('creds.json.tmp')),
      [],
    );
  });

  it('the directory itself going away is reported as removed', async () => {
    const dir = path.join(await tempDir('watch-removed'), 'auth_info');
    await mkdir(dir);
    const { handlers, reported } = recorder();
    await opened('native', dir, handlers);
    await rmdir(dir);
    await reported('removed');
  });

  it('a missing directory rejects with its ENOENT, not a watch start failure', async () => {
    const dir = path.join(await tempDir('watch-missing'), 'nope');
    await assert.rejects(new WatchOpener('native', 50).open(dir, recorder().handlers), { code: 'ENOENT' });
  });

  it("doctor's probe: native watching reports the probe file, which is gone afterwards", async () => {
    const dir = await tempDir('watch-probe');
    assert.equal(await probeNativeWatching(dir, '.probe', 5_000), true);
    await assert.rejects(rm(path.join(dir, '.probe')), { code: 'ENOENT' });
  });
});

// ---------------------------------------------------------------- a node out of inotify instances

const user = otherUser();
const python = 'skip' in user ? null : systemPython(user.uid);
describe("the auth directory's direct native watch (fs.watch, no chokidar listing)", () => {
  async function direct(dir: string, handlers: FallbackHandlers, ignore?: (name: string) => boolean) {
    const watch = await new WatchOpener('native', 50).open(dir, handlers, ignore, true);
    after(() => watch.close());
    return watch;
  }
  /** The names reported so far, whatever the event. */
  const names = (seen: string[]) => new Set(seen.map((event) => event.split(':')[0]));

  it('reports every entry written, created, deleted or renamed by its name, nothing below it, nothing left out', async () => {
    const dir = await tempDir('direct');
    await writeFile(path.join(dir, 'old.json'), '{}');
    const { seen, handlers, reported } = recorder();
    const watch = await direct(dir, handlers, (name) => name.endsWith('.tmp'));
    assert.equal(watch.backend, 'native');
    await writeFile(path.join(dir, 'creds.json'), '{}');
    await reported('creds.json:renamed');
    await writeFile(path.join(dir, 'creds.json'), '{"changed":true}');
    await reported('creds.json:change');
    await rename(path.join(dir, 'old.json'), path.join(dir, 'new.json'));
    await reported('old.json:renamed');
    await reported('new.json:renamed');
    await unlink(path.join(dir, 'new.json'));
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'sub', 'below.json'), '{}');
    await writeFile(path.join(dir, 'x.tmp'), '{}');
    await writeFile(path.join(dir, 'last.json'), '{}');
    await reported('last.json:renamed');
    assert.ok(!names(seen).has('below.json'), 'a file below the directory is not its entry');
    assert.ok(!names(seen).has('x.tmp'), 'a name left out is never reported');
    assert.ok(!seen.includes('removed') && !seen.includes('error'));
  });

  for (const [how, away] of [
    ['deleted', async (dir: string) => rm(dir, { recursive: true })],
    ['moved away', async (dir: string) => rename(dir, `${dir}.moved`)],
    [
      'replaced by another directory',
      async (dir: string) => {
        await rename(dir, `${dir}.old`);
        await mkdir(dir);
      },
    ],
  ] as const) {
    it(`the directory ${how} is reported as removed, once`, async () => {
      const dir = path.join(await tempDir('direct-away'), 'auth_info');
      await mkdir(dir);
      await writeFile(path.join(dir, 'creds.json'), '{}');
      const { seen, handlers, reported } = recorder();
      await direct(dir, handlers);
      await away(dir);
      await reported('removed');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(seen.filter((event) => event === 'removed').length, 1);
    });
  }

  it('a directory deleted and made again at once (its inode number may come back) is followed: the new one is watched', async () => {
    const dir = path.join(await tempDir('direct-again'), 'auth_info');
    await mkdir(dir);
    await writeFile(path.join(dir, 'creds.json'), '{}');
    const seen: string[] = [];
    const watcher = new DirectoryWatcher(
      dir,
      { mode: 'native', pollIntervalMs: 50 },
      {
        changed: (name) => void seen.push(name),
        watching: (backend) => void seen.push(`watching ${backend}`),
        lost: (reason) => void seen.push(`lost ${reason}`),
        fellBack: () => void seen.push('fell back'),
        error: () => void seen.push('error'),
      },
    );
    after(() => watcher.close());
    await watcher.start();
    // What a bot does on logout: wipe its folder and open a new one at once, in the same process.
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    await waitFor(
      () => (seen.includes('lost removed') && seen.filter((event) => event === 'watching native').length === 2 ? true : null),
      5_000,
      () => `the new directory was not watched; reported: ${seen.join(', ')}`,
    );
    await writeFile(path.join(dir, 'pre-key-1.json'), '{}');
    await waitFor(
      () => (seen.includes('pre-key-1.json') ? true : null),
      5_000,
      () => `a write in the new directory was not reported: ${seen.join(', ')}`,
    );
  });

  it("an entry named like the directory itself is an entry, not the directory's removal", async () => {
    const dir = path.join(await tempDir('direct-own'), 'auth_info');
    await mkdir(dir);
    const { seen, handlers, reported } = recorder();
    await direct(dir, handlers);
    await writeFile(path.join(dir, 'auth_info'), '{}');
    await reported('auth_info:renamed');
    await writeFile(path.join(dir, 'after.json'), '{}');
    await reported('after.json:renamed');
    assert.ok(!seen.includes('removed'));
  });

  it('reports nothing once closed', async () => {
    const dir = await tempDir('direct-closed');
    const { seen, handlers } = recorder();
    const watch = await new WatchOpener('native', 50).open(dir, handlers, undefined, true);
    await watch.close();
    await writeFile(path.join(dir, 'creds.json'), '{}');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(seen, []);
  });
});

const skip = 'skip' in user ? user.skip : python === null ? 'no python3 a throwaway user can run' : false;

/**
 * Runs `body` (an ES module's statements, with WatchOpener, WatchStartError, probeNativeWatching and `dir`
 * in scope) as the throwaway user while every inotify instance of that user is taken; returns what
 * it printed as JSON on its last line.
 */
async function asUserWithoutInotify(dir: string, body: string[]): Promise<unknown> {
  if ('skip' in user) throw new Error(user.skip);
  const watchModule = await watchModuleForOthers();
  const exhauster = await exhaustInotify(user.uid, python!);
  try {
    const script = [
      `import { WatchOpener, WatchStartError, probeNativeWatching } from ${JSON.stringify(pathToFileURL(watchModule).href)};`,
      `const dir = ${JSON.stringify(dir)};`,
      ...body,
    ].join('\n');
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      uid: user.uid,
      gid: user.gid,
      timeout: 30_000,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1)!);
  } finally {
    exhauster.kill('SIGKILL');
  }
}

/**
 * The watch module (and chokidar in it) as one file the throwaway user can read: the checkout may sit in a
 * directory only its owner can enter (a fresh `mktemp -d` clone is 0700). Bundled by esbuild, as the CLI is.
 */
async function watchModuleForOthers(): Promise<string> {
  const dir = await tempDir('watch-module');
  await openToAll(dir);
  const outfile = path.join(dir, 'watch.mjs');
  const source = (name: string) => JSON.stringify(path.join(REPO, 'build', 'src', 'watch', name));
  await build({
    stdin: { contents: `export * from ${source('chokidar.js')};\nexport * from ${source('probe.js')};`, resolveDir: REPO },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    logLevel: 'silent',
  });
  return outfile;
}

describe('the watch module where native watching is unavailable (inotify instances used up)', { skip }, () => {
  async function userDir(label: string): Promise<string> {
    const parent = await tempDir(label);
    await openToAll(parent);
    const dir = path.join(parent, 'watched');
    await mkdir(dir);
    await chown(dir, (user as { uid: number }).uid, (user as { gid: number }).gid);
    return dir;
  }

  it('auto falls back to polling once, says so, and the polled directory is reported', async () => {
    const dir = await userDir('watch-fallback');
    const report = await asUserWithoutInotify(dir, [
      "import { writeFile } from 'node:fs/promises';",
      'const seen = [];',
      'const fell = [];',
      "const handlers = { entry: (name, event) => seen.push(name + ':' + event), removed() {}, error() {}, fellBack: (error, broken) => fell.push({ code: error.code, broken: broken !== null }) };",
      "const opener = new WatchOpener('auto', 50);",
      'const first = await opener.open(dir, handlers);',
      "await writeFile(dir + '/creds.json', '{}');",
      "for (let i = 0; i < 200 && !seen.includes('creds.json:add'); i++) await new Promise((resolve) => setTimeout(resolve, 25));",
      'await first.close();',
      // A second watch by the same opener (the sessions directory watched again) polls without trying native.
      'const second = await opener.open(dir, handlers);',
      'await second.close();',
      // An auth directory's direct native watch (fs.watch) falls back the same way.
      "const direct = await new WatchOpener('auto', 50).open(dir, handlers, undefined, true);",
      'await direct.close();',
      'console.log(JSON.stringify({ first: first.backend, second: second.backend, direct: direct.backend, fell, seen }));',
    ]);
    assert.deepEqual(report, {
      first: 'polling',
      second: 'polling',
      direct: 'polling',
      fell: [
        { code: 'EMFILE', broken: false },
        { code: 'EMFILE', broken: false },
      ],
      seen: ['creds.json:add'],
    });
  });

  it("native does not fall back: a WatchStartError that says why; doctor's probe returns the same cause", async () => {
    const dir = await userDir('watch-native');
    const report = await asUserWithoutInotify(dir, [
      'let failure = null;',
      "const handlers = { entry() {}, removed() {}, error() {}, fellBack() { failure = 'fell back'; } };",
      "await new WatchOpener('native', 50).open(dir, handlers).then(",
      "  (watch) => { failure = 'watching ' + watch.backend; return watch.close(); },",
      '  (error) => { failure = { start: error instanceof WatchStartError, code: error.cause?.code, message: error.message }; },',
      ');',
      "const probe = await probeNativeWatching(dir, '.probe', 3000);",
      'console.log(JSON.stringify({ failure, probe: probe instanceof Error ? probe.code : probe }));',
    ]);
    const { failure, probe } = report as { failure: { start: boolean; code: string; message: string }; probe: unknown };
    assert.equal(failure.start, true);
    assert.equal(failure.code, 'EMFILE');
    assert.match(failure.message, /EMFILE/);
    assert.equal(probe, 'EMFILE');
  });
});
