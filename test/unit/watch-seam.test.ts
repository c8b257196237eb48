// One module per outside mechanism: chokidar is set up in src/watch/chokidar.ts only (the fleet and
// doctor's probe open their watchers through it), with no option the installed chokidar calls
// deprecated; and nothing in src/ pauses on the real clock (sleeps go through the injected Clock).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../harness/paths.js';
import { chokidarOptions, type WatchBackend } from '../../src/watch/chokidar.js';

const SRC = path.join(REPO, 'src');
/** The only file that may import chokidar. */
const SEAM = 'watch/chokidar.ts';

/** Every .ts file under src/ (generated sources included), relative to src/, with its text. */
async function sources(): Promise<Map<string, string>> {
  const entries = await readdir(SRC, { recursive: true, withFileTypes: true });
  const files = entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts'));
  const texts = await Promise.all(files.map((entry) => readFile(path.join(entry.parentPath, entry.name), 'utf8')));
  return new Map(files.map((entry, i) => [path.relative(SRC, path.join(entry.parentPath, entry.name)), texts[i]!]));
}

/** The module names a file imports or re-exports, statically or dynamically. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gms)) found.push(match[1]!);
  for (const match of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) found.push(match[1]!);
  for (const match of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(match[1]!);
  return found;
}

/** Which files import `module` (the package itself or one of its sub-paths). */
function importersOf(files: Map<string, string>, module: string): string[] {
  return [...files]
    .filter(([, text]) => importsOf(text).some((name) => name === module || name.startsWith(`${module}/`)))
    .map(([file]) => file)
    .sort();
}

/** The option names the installed chokidar marks @deprecated in its typings. */
async function deprecatedChokidarOptions(): Promise<string[]> {
  const typings = await readFile(path.join(REPO, 'node_modules', 'chokidar', 'runtime.d.ts'), 'utf8');
  return [...typings.matchAll(/@deprecated[^*]*\*\/\s*(\w+)\??:/g)].map((match) => match[1]!);
}

describe('the watch seam', () => {
  it('only src/watch/chokidar.ts imports chokidar; the fleet and doctor go through the watch module', async () => {
    const files = await sources();
    assert.ok(files.has(SEAM), `${SEAM} exists`);
    assert.deepEqual(importersOf(files, 'chokidar'), [SEAM]);
    assert.ok(importsOf(files.get('fleet.ts')!).includes('./watch/chokidar.js'), 'the fleet opens its watcher through the module');
    assert.ok(importsOf(files.get('commands/doctor.ts')!).includes('../watch/probe.js'), "doctor's probe is the module's");
    assert.ok(importsOf(files.get('watch/probe.ts')!).includes('./chokidar.js'));
    assert.ok(importsOf(files.get('watcher.ts')!).includes('./watch/chokidar.js'));
  });

  it('the import reader sees every form of import (so the check above cannot pass by missing one)', () => {
    const text = [
      "import { watch } from 'chokidar';",
      "import type {\n  FSWatcher,\n} from 'chokidar/index.js';",
      "export { x } from 'chokidar';",
      "import 'chokidar';",
      "const lazy = await import('chokidar');",
    ].join('\n');
    assert.deepEqual(importsOf(text), ['chokidar', 'chokidar/index.js', 'chokidar', 'chokidar', 'chokidar']);
  });

  it("the watch options use none of the option names chokidar's typings call deprecated", async () => {
    const deprecated = await deprecatedChokidarOptions();
    assert.ok(deprecated.includes('usePolling') && deprecated.includes('interval'), `read from the typings: ${deprecated.join(', ')}`);
    for (const backend of ['native', 'polling'] satisfies WatchBackend[]) {
      const options = chokidarOptions('/dir', { backend, pollIntervalMs: 500, ignore: () => false });
      assert.deepEqual(
        Object.keys(options).filter((key) => deprecated.includes(key)),
        [],
      );
      assert.equal(options.backend, backend);
      assert.equal(options.pollingInterval, 500);
    }
    const seam = (await sources()).get(SEAM)!;
    for (const name of deprecated) assert.doesNotMatch(seam, new RegExp(`\\b${name}\\s*:`), `${SEAM} sets ${name}`);
  });

  it('nothing in src/ pauses on the real clock: timers are set through the injected Clock', async () => {
    const files = await sources();
    const callers = [...files].filter(([, text]) => /\bset(?:Timeout|Interval)\s*\(/.test(text)).map(([file]) => file);
    assert.deepEqual(callers.sort(), [
      'clock.ts', // systemClock itself
      'embedded-postgres.ts', // the development server's start and stop deadlines: no loop
      'generated/status-page.ts', // the status page's script, embedded as text: it runs in the browser
      'process-group.ts', // run's unref'd scan for escaped processes while the bot runs: no pause
    ]);
  });
});
