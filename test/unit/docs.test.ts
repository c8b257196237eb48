// The settings table is the only list of settings: the README's configuration table is generated
// from it, and no KEEPER_* variable is read that it does not hold.
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
import { anchor, README, replaceBlock, SETTINGS_END, SETTINGS_START, settingsMarkdown } from '../../scripts/docs.js';
import { REPO } from '../../harness/paths.js';

/** KEEPER_* words in the source that are not environment variables. */
const NOT_VARIABLES = new Set([
  'KEEPER_CHANNEL_BINDING_REQUIRED', // an error code (src/db/auth.ts)
  'KEEPER_NO_PASSWORD', // an error code (src/db/errors.ts)
  'KEEPER_SECRET_VARIABLES', // a constant (src/config.ts)
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
