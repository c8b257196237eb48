// The settings table is the only list of settings: the README's configuration table is generated
// from it, and no KEEPER_* variable is read that it does not hold.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { COMMAND_SPECS } from '../../src/commands/index.js';
import { commandHelp } from '../../src/help.js';
import { COMMANDS, environmentVariables, SETTINGS, type Setting, settingsFor, shownDefault } from '../../src/options.js';
import { anchor, README, replaceBlock, SETTINGS_END, SETTINGS_START, settingsMarkdown } from '../../scripts/docs.js';
import { REPO } from '../../harness/paths.js';

/** KEEPER_* words in the source that are not environment variables. */
const NOT_VARIABLES = new Set([
  'KEEPER_CHANNEL_BINDING_REQUIRED', // an error code (src/db/auth.ts)
  'KEEPER_NO_PASSWORD', // an error code (src/db/errors.ts)
  'KEEPER_SECRET_VARIABLES', // a constant (src/config.ts)
]);

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
