// The settings table is the only list of settings: the README's configuration table is generated
// from it, and no KEEPER_* variable is read that it does not hold. What the docs quote from a
// repository file (a Dockerfile, railway.json, …) is written from that file, so it cannot drift.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { COMMAND_SPECS } from '../../src/commands/index.js';
import { commandHelp } from '../../src/help.js';
import {
  COMMANDS,
  envNames,
  environmentVariables,
  NOT_SETTINGS,
  SETTINGS,
  type Setting,
  settingsFor,
  shownDefault,
} from '../../src/options.js';
import {
  anchor,
  documents,
  EXCERPT,
  excerptBlock,
  markdownFiles,
  README,
  readRepositoryFile,
  replaceBlock,
  ROOT,
  SETTINGS_END,
  SETTINGS_START,
  settingsMarkdown,
  updateExcerpts,
} from '../../scripts/docs.js';
import { REPO } from '../../harness/paths.js';

/** KEEPER_* words in the source that are not environment variables. */
const NOT_VARIABLES = new Set([
  'KEEPER_CHANNEL_BINDING_REQUIRED', // an error code (src/db/auth.ts)
  'KEEPER_NO_PASSWORD', // an error code (src/db/errors.ts)
  'KEEPER_SECRET_VARIABLES', // a constant (src/config.ts)
  // Misspellings, shown as what the keeper refuses in place of KEEPER_SESSION_ID / KEEPER_SESSIONS_DIR.
  'KEEPER_SESION_ID',
  'KEEPER_SESSIONS_DIRS',
]);

/** Where an operator reads variable names: the README, docs/, the deployment files and the images. */
async function operatorFiles(): Promise<string[]> {
  const files = [path.join(REPO, 'README.md')];
  for (const dir of ['docs', 'deploy', 'charts', 'examples']) {
    const entries = await readdir(path.join(REPO, dir), { withFileTypes: true, recursive: true });
    files.push(
      ...entries
        .filter(
          (entry) =>
            entry.isFile() &&
            !entry.parentPath.includes('node_modules') &&
            /\.(md|ya?ml|json|tpl|txt|toml|env)$|Dockerfile/.test(entry.name),
        )
        .map((entry) => path.join(entry.parentPath, entry.name)),
    );
  }
  for (const entry of await readdir(REPO)) if (entry.startsWith('Dockerfile')) files.push(path.join(REPO, entry));
  return files;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts')).map((entry) => path.join(entry.parentPath, entry.name));
}

describe('the settings table', () => {
  it("is what the README's configuration table says (npm run docs writes it)", async () => {
    const text = await readFile(README, 'utf8');
    assert.equal(replaceBlock(text, SETTINGS_START, SETTINGS_END, settingsMarkdown()), text, 'README.md is out of date: run npm run docs');
  });

  it('holds every KEEPER_* variable the source reads, and nothing it does not', async () => {
    const mentioned = new Set<string>();
    // The table itself does not count as code that reads a variable.
    for (const file of (await sourceFiles(path.join(REPO, 'src'))).filter((name) => !name.endsWith(`${path.sep}options.ts`))) {
      for (const match of (await readFile(file, 'utf8')).matchAll(/\b(KEEPER_[A-Z0-9_]+)\b/g)) mentioned.add(match[1]!);
    }
    const table = new Set(environmentVariables().filter((name) => name.startsWith('KEEPER_')));
    assert.deepEqual(
      [...mentioned].filter((name) => !table.has(name) && !NOT_VARIABLES.has(name)).sort(),
      [],
      'variables the source names but the table lacks',
    );
    // That config.ts reads every variable of the table, through the table: test/unit/settings.test.ts.
  });

  it('gives every flag an environment twin, or says why it is a one-shot flag', () => {
    for (const [name, setting] of Object.entries(SETTINGS) as Array<[string, Setting]>) {
      if (!setting.flag) assert.equal(setting.oneShot, undefined, `${name}: an environment-only setting is no one-shot flag`);
      else
        assert.ok(
          Boolean(setting.env) !== Boolean(setting.oneShot),
          `--${name}: either an environment twin or a one-shot reason, not both`,
        );
    }
    // The container roles read these from the environment (the images are configured by it alone).
    assert.equal(SETTINGS['require-backup'].env, 'KEEPER_REQUIRE_BACKUP');
    const restore = commandHelp(COMMAND_SPECS.get('restore')!);
    assert.match(restore, /^ {2}--force .*\[one-shot: no env\]$/m);
    assert.match(restore, /^ {2}--require-backup .*\[env KEEPER_REQUIRE_BACKUP\]$/m);
  });

  it("has the README's configuration table name each setting's flag and variables, and list the one-shot flags", async () => {
    const text = await readFile(README, 'utf8');
    const block = text.slice(text.indexOf(SETTINGS_START), text.indexOf(SETTINGS_END));
    const rows = block.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| flag ') && !line.startsWith('|---'));
    const columns = rows.map((line) => [line.split(' | ')[0]!.slice(2), line.split(' | ')[1]!] as const);
    const settings = Object.entries(SETTINGS) as Array<[string, Setting]>;
    assert.equal(rows.length, settings.length, 'one README row per setting');
    for (const [name, setting] of settings) {
      const flag = setting.flag ? `\`--${name}${setting.value ? ` ${setting.value}` : ''}\`` : '—';
      const env = columns.find(([key, variables]) => key === flag && (setting.flag || variables.startsWith(`\`${setting.env}\``)))?.[1];
      const expected =
        envNames(setting)
          .map((variable) => `\`${variable}\``)
          .join(' / ') || (setting.oneShot ? '— (one-shot)' : '—');
      assert.equal(env, expected, `${name}: the README's variables`);
    }
    const listed = [...block.matchAll(/^- `--([a-z-]+)`: (.+)\.$/gm)].map((match) => [match[1], match[2]]);
    assert.deepEqual(
      listed,
      settings.filter(([, setting]) => setting.oneShot).map(([name, setting]) => [name, setting.oneShot]),
    );
  });

  it('names, in the README, docs and deployment files, no KEEPER_* variable that the keeper does not read', async () => {
    const known = new Set([...environmentVariables(), ...NOT_SETTINGS.map(([name]) => name)]);
    const strays: string[] = [];
    for (const file of await operatorFiles()) {
      const relative = path.relative(REPO, file);
      for (const match of (await readFile(file, 'utf8')).matchAll(/\b(KEEPER_[A-Z0-9_]*[A-Z0-9])\b/g)) {
        const name = match[1]!;
        // The test suite's own switches, documented for developers.
        if (name.startsWith('KEEPER_TEST_') && relative === path.join('docs', 'development.md')) continue;
        if (!known.has(name) && !NOT_VARIABLES.has(name)) strays.push(`${relative}: ${name}`);
      }
    }
    assert.deepEqual([...new Set(strays)], [], 'variables the documentation names but no setting reads');
  });

  it('gives every command a module, and every command help lists exactly its flags', () => {
    assert.deepEqual([...COMMAND_SPECS.keys()], [...COMMANDS]);
    for (const [name, spec] of COMMAND_SPECS) {
      const help = commandHelp(spec);
      const flags = [...help.matchAll(/^ {2}(--[a-z-]+)/gm)].map((match) => match[1]);
      assert.deepEqual(
        flags,
        settingsFor(name)
          .filter(([, setting]) => setting.flag)
          .map(([flag]) => `--${flag}`),
        name,
      );
    }
  });

  it("links every setting's `see` to a heading that exists", async () => {
    for (const [name, setting] of Object.entries(SETTINGS) as Array<[string, Setting]>) {
      if (!setting.see) continue;
      const [file, fragment] = setting.see[1].split('#') as [string, string | undefined];
      const text = await readFile(path.join(REPO, file === '' ? 'README.md' : file), 'utf8');
      if (fragment === undefined) continue;
      const anchors = new Set([
        ...[...text.matchAll(/^#+ (.+)$/gm)].map((match) => anchor(match[1]!)),
        ...[...text.matchAll(/<a id="([^"]+)"/g)].map((match) => match[1]!),
      ]);
      assert.ok(anchors.has(fragment), `${name}: ${setting.see[1]} has no such heading`);
    }
  });

  it('names only known commands and gives every setting a help text and a default', () => {
    for (const [name, setting] of Object.entries(SETTINGS)) {
      assert.ok(setting.help.length > 0 && shownDefault(setting).length > 0, name);
      for (const command of setting.commands ?? []) assert.ok((COMMANDS as readonly string[]).includes(command), `${name}: ${command}`);
    }
  });
});

/** Lines that say something (a quote of them is a quote): trimmed, at least 8 characters, not only punctuation. */
function substantive(lines: string[]): string[] {
  return lines.map((line) => line.trim()).filter((line) => line.length >= 8 && /[A-Za-z0-9]/.test(line));
}

/** The longest run of consecutive substantive lines of `block` that also appear consecutively in `file`. */
function longestQuote(block: string[], file: string[]): number {
  const [a, b] = [substantive(block), substantive(file)];
  let best = 0;
  let previous = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const current = new Array<number>(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++) {
      if (a[i - 1] === b[j - 1]) current[j] = previous[j - 1]! + 1;
      best = Math.max(best, current[j]!);
    }
    previous = current;
  }
  return best;
}

/** A quote of this many consecutive lines of a repository file must be an excerpt written from it. */
const QUOTE_LINES = 3;

/** The fenced code blocks of a Markdown text outside excerpt regions, with the line each starts on. */
function freeBlocks(text: string): { line: number; lines: string[] }[] {
  const outside = text.replace(EXCERPT, (region) => region.replace(/[^\n]/g, ' '));
  const blocks: { line: number; lines: string[] }[] = [];
  let open: { line: number; lines: string[]; fence: string } | null = null;
  outside.split('\n').forEach((line, index) => {
    const fence = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (open) {
      if (fence && fence[0] === open.fence[0] && fence.length >= open.fence.length && line.trim() === fence) {
        blocks.push({ line: open.line, lines: open.lines });
        open = null;
      } else open.lines.push(line);
    } else if (fence) open = { line: index + 1, lines: [], fence };
  });
  return blocks;
}

/** The files the docs may quote: Dockerfiles, deploy/ and charts/ (but their Markdown), the example bot, the workflows. */
async function quotableFiles(): Promise<string[]> {
  const found = (await readdir(ROOT)).filter((name) => name.startsWith('Dockerfile'));
  for (const dir of ['deploy', 'charts', 'examples/baileys-bot', '.github/workflows']) {
    for (const entry of await readdir(path.join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      const file = path.relative(ROOT, path.join(entry.parentPath, entry.name));
      if (entry.isFile() && !entry.name.endsWith('.md') && entry.name !== 'package-lock.json' && !file.includes('node_modules'))
        found.push(file);
    }
  }
  return found.sort();
}

describe('excerpts of repository files in the docs', () => {
  it('are what the files hold (npm run docs writes them)', async () => {
    const stale = [...(await documents())].filter(([, [text, updated]]) => text !== updated).map(([file]) => file);
    assert.deepEqual(stale, [], 'out of date: run npm run docs');
  });

  it('include the Railway Dockerfile and railway.json in the README', async () => {
    const quoted = [...(await readFile(README, 'utf8')).matchAll(EXCERPT)].map((match) => match[1]);
    assert.deepEqual(quoted.sort(), ['deploy/railway/Dockerfile', 'deploy/railway/railway.json']);
  });

  it('are rewritten from the file when they drift, and name a file that exists (the check can fail)', async () => {
    const file = 'deploy/railway/Dockerfile';
    const head = `<!-- excerpt:start ${file} without-comments (written from the file by npm run docs) -->`;
    // What the README showed before the excerpts were generated: another ENTRYPOINT than the file's.
    const drifted = `text\n${head}\n\`\`\`dockerfile\nENTRYPOINT ["/usr/bin/tini", "--", "baileys-keeper", "run", "--"]\n\`\`\`\n<!-- excerpt:end -->\nmore\n`;
    const updated = await updateExcerpts(drifted, readRepositoryFile);
    assert.notEqual(updated, drifted);
    const dockerfile = await readRepositoryFile(file);
    assert.equal(updated, `text\n${head}\n${excerptBlock(file, dockerfile, ['without-comments'])}\n<!-- excerpt:end -->\nmore\n`);
    assert.match(updated, /ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "--max-semi-space-size=1"/);
    assert.doesNotMatch(updated, /^#/m, 'without-comments drops the comment lines');
    await assert.rejects(
      updateExcerpts(drifted.replace(file, 'deploy/railway/Dockerfile.gone'), readRepositoryFile),
      /an excerpt names deploy\/railway\/Dockerfile\.gone, which cannot be read/,
    );
    assert.throws(() => excerptBlock(file, dockerfile, ['abridged']), /unknown option abridged/);
  });

  it('cover every quote: no other code block repeats 3 lines in a row of a repository file', async () => {
    const files = await quotableFiles();
    for (const expected of [
      'Dockerfile.sidecar',
      'deploy/railway/Dockerfile',
      'deploy/compose/docker-compose.yml',
      'charts/baileys-keeper/values.yaml',
    ])
      assert.ok(files.includes(expected), expected);
    // The check finds a hand-made copy (here three lines of the Railway Dockerfile, as the README once had).
    const dockerfile = (await readRepositoryFile('deploy/railway/Dockerfile')).split('\n');
    const copy = ['RUN apt-get update \\', ' && apt-get install -y --no-install-recommends tini \\', ' && rm -rf /var/lib/apt/lists/*'];
    assert.equal(longestQuote(freeBlocks(`x\n\`\`\`dockerfile\n${copy.join('\n')}\n\`\`\`\n`)[0]!.lines, dockerfile), 3);

    const contents = new Map(await Promise.all(files.map(async (file) => [file, (await readRepositoryFile(file)).split('\n')] as const)));
    const quotes: string[] = [];
    for (const doc of await markdownFiles()) {
      for (const block of freeBlocks(await readFile(path.join(ROOT, doc), 'utf8'))) {
        for (const [file, lines] of contents) {
          const run = longestQuote(block.lines, lines);
          if (run >= QUOTE_LINES) quotes.push(`${doc}:${block.line} repeats ${run} lines of ${file}`);
        }
      }
    }
    assert.deepEqual(quotes, [], 'make each an excerpt (<!-- excerpt:start FILE … -->, see scripts/docs.ts), or stop quoting');
  });
});
