// Who may import whom (docs/development.md "Layers"): the database is reached through the store, the row
// codec is pure, and the store knows nothing of the loops that call it. Imports (import, import type,
// export … from, import()) are read by a real TypeScript parser (oxc-parser), not by a home-made one.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseSync } from 'oxc-parser';
import { REPO } from '../../harness/paths.js';

const SRC = path.join(REPO, 'src');

/** Every module under src/ (relative, with '/'), with the src/ modules it imports (relative, '.js' → '.ts'). */
async function importGraph(): Promise<Map<string, string[]>> {
  const entries = await readdir(SRC, { withFileTypes: true, recursive: true });
  const graph = new Map<string, string[]>();
  for (const entry of entries.filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))) {
    const file = path.join(entry.parentPath, entry.name);
    const text = await readFile(file, 'utf8');
    const { module, errors } = parseSync(file, text);
    assert.deepEqual(errors, [], `${file} does not parse`);
    const specifiers = [
      ...module.staticImports.map((entry) => entry.moduleRequest.value),
      ...module.staticExports.flatMap((entry) => entry.entries.flatMap((e) => (e.moduleRequest ? [e.moduleRequest.value] : []))),
      // A dynamic import's specifier, when it is a string literal (quotes stripped).
      ...module.dynamicImports.map((entry) => text.slice(entry.moduleRequest.start, entry.moduleRequest.end).replace(/^['"`]|['"`]$/g, '')),
    ];
    const imported = specifiers
      .filter((name) => name.startsWith('.'))
      .map((name) =>
        path
          .relative(SRC, path.resolve(path.dirname(file), name))
          .split(path.sep)
          .join('/')
          .replace(/\.js$/, '.ts'),
      );
    graph.set(path.relative(SRC, file).split(path.sep).join('/'), imported);
  }
  return graph;
}

/** The importers of modules matching `target`, except those matching `allowed`: "importer -> module" each. */
function offenders(graph: Map<string, string[]>, target: (module: string) => boolean, importer: (file: string) => boolean): string[] {
  return [...graph]
    .flatMap(([file, imports]) => (importer(file) ? imports.filter(target).map((module) => `${file} -> ${module}`) : []))
    .sort();
}

const inDb = (module: string) => module.startsWith('db/');
const inStore = (file: string) => file.startsWith('store/');
/** The commands that open the database themselves (connect, migrate, probe privileges). */
const OPEN_THE_DATABASE = new Set(['commands/database.ts', 'commands/service.ts', 'commands/doctor.ts']);
/** What the store must not know: the loops, the HTTP surface, the commands, the watcher. */
const LOOP = (module: string) =>
  /^(sidecar|fleet|api|http|health|metrics|watcher|backup-loop|lease|lease-renewals|schema-gate|cli|help)\.ts$/.test(module) ||
  module.startsWith('loop/') ||
  module.startsWith('watch/') ||
  module.startsWith('commands/');

describe('layers', () => {
  it('reads the imports it judges (the store reaches the database)', async () => {
    const graph = await importGraph();
    // A reader that found nothing would pass every rule below: make sure it sees real edges.
    assert.ok(graph.get('store/backup.ts')?.includes('db/queries/files.ts'), 'store/backup.ts -> db/queries/files.ts not seen');
    assert.ok(graph.get('store/index.ts')?.includes('db/migrate.ts'), 'store/index.ts -> db/migrate.ts not seen');
  });

  it('only the store, the database layer and the commands that open the database import src/db/', async () => {
    const graph = await importGraph();
    const allowed = (file: string) => inDb(file) || inStore(file) || OPEN_THE_DATABASE.has(file);
    assert.deepEqual(
      offenders(graph, inDb, (file) => !allowed(file)),
      [],
    );
  });

  it('the row codec imports nothing from src/db/ (it is pure: values in, values out)', async () => {
    const graph = await importGraph();
    assert.deepEqual(
      offenders(graph, inDb, (file) => file.startsWith('store/codec/')),
      [],
    );
  });

  it('the store imports nothing from the loops, the HTTP surface or the commands', async () => {
    const graph = await importGraph();
    assert.deepEqual(offenders(graph, LOOP, inStore), []);
  });
});
