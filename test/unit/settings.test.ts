// The settings table agrees with itself: each row's default reads back through its own parser, help and
// the README show that default, the configuration holds it, config.ts reads exactly the variables the
// table names, and each command gets exactly the settings whose rows list it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../harness/paths.js';
import { README, SETTINGS_END, SETTINGS_START } from '../../scripts/docs.js';
import { COMMAND_SPECS } from '../../src/commands/index.js';
import { type Config, type ConfigOf, FIELDS, fieldsFor, loadConfig } from '../../src/config.js';
import { commandHelp } from '../../src/help.js';
import {
  type Command,
  COMMANDS,
  describeSetting,
  envNames,
  SETTINGS,
  type Setting,
  type SettingName,
  settingsFor,
  shownDefault,
} from '../../src/options.js';

const rows = Object.entries(SETTINGS) as Array<[SettingName, Setting]>;
const CWD = '/srv';
/** What each command needs to load at all. */
const argvOf = (command: Command): string[] => (command === 'run' ? ['--', 'node', 'bot.js'] : []);
const envOf = (command: Command): Record<string, string> =>
  command === 'rekey' ? { KEEPER_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` } : {};

/** The text of a value as the parser reads it (a switch's variable: true/false). */
function written(setting: Setting): string {
  return setting.parse.format ? setting.parse.format(setting.default) : String(setting.default);
}

/** A configuration field as the row's default is written: what config.ts made of the default, undone. */
function asRowValue(field: string, value: unknown): unknown {
  if (field === 'dir' || field === 'dataDir') return `./${path.relative(CWD, value as string)}`;
  if (field === 'retention') return (value as Config['retention']).text;
  return value;
}

describe('the settings table agrees with itself', () => {
  it("reads every row's default back through the row's own parser", () => {
    for (const [name, setting] of rows) {
      if (setting.default === null) {
        assert.ok(setting.show, `${name}: a setting without a default value says in \`show\` what unset means`);
        continue;
      }
      assert.deepEqual(setting.parse(written(setting), describeSetting(name, setting)), setting.default, name);
    }
  });

  it("shows each row's default in every help that lists it", () => {
    for (const [command, spec] of COMMAND_SPECS) {
      const help = commandHelp(spec);
      for (const [name, setting] of settingsFor(command)) {
        if (setting.kind === 'boolean') continue; // a switch is off unless given: help shows no default
        const label = setting.flag ? `--${name}${setting.value ? ` ${setting.value}` : ''}` : envNames(setting).join(' | ');
        const lines = help.split('\n');
        const at = lines.findIndex((text) => text.startsWith(`  ${label} `) || text === `  ${label}`);
        // A long label has its text on the next line.
        const line = `${lines[at]} ${lines[at + 1]}`;
        assert.ok(at !== -1 && line.includes(`default ${shownDefault(setting)}`), `${command} --help, ${name}: ${line}`);
        if (setting.show === undefined) assert.ok(line.includes(`default ${written(setting)}`), `${command} --help, ${name}`);
      }
    }
  });

  it("has the README's configuration table show each row's default, in words that parse back to it", async () => {
    const text = await readFile(README, 'utf8');
    const table = text.slice(text.indexOf(SETTINGS_START), text.indexOf(SETTINGS_END)).split('\n').slice(3);
    for (const [name, setting] of rows) {
      const key = setting.flag ? `\`--${name}` : `\`${setting.env}\``;
      const row = table.find((line) => line.startsWith(`| ${key}`) || line.startsWith(`| — | ${key}`));
      assert.ok(row, `${name} has a row in the README`);
      const shown = row.split(' | ')[2]!;
      assert.equal(shown, shownDefault(setting), name);
      if (setting.show !== undefined || setting.default === null) continue;
      if (setting.kind === 'boolean') assert.equal(shown, 'off', name);
      else assert.deepEqual(setting.parse(shown, name), setting.default, `${name}: the README's default reads back`);
    }
  });

  it("holds each row's default in the configuration when nothing is given", () => {
    for (const command of COMMANDS) {
      const config = loadConfig(command, argvOf(command), envOf(command), CWD) as unknown as Record<string, unknown>;
      for (const field of fieldsFor(command)) {
        const [name, ...others] = FIELDS[field];
        const setting: Setting = SETTINGS[name];
        if (setting.default === null || field === 'sessionExplicit' || (command === 'rekey' && field === 'encryption')) continue;
        assert.deepEqual(asRowValue(field, config[field]), setting.default, `${command}: ${field}`);
        if (field === 'retention') assert.equal((config[field] as Config['retention']).keep, SETTINGS.keep.default, command);
        for (const other of others) assert.ok(SETTINGS[other].default !== null, `${field}: ${other}`);
      }
    }
    // Unset, max-delay follows a longer debounce: the row's default is the floor.
    assert.equal(loadConfig('sidecar', ['--debounce', '4000'], {}, CWD).maxDelayMs, 4000);
  });

  it('reads, for each command, exactly the environment variables of the rows that list it', () => {
    const everyRead = new Set<string>();
    for (const command of COMMANDS) {
      const read = new Set<string>();
      const env = new Proxy(envOf(command), {
        get(target, key) {
          if (typeof key === 'string') read.add(key);
          return Reflect.get(target, key);
        },
      });
      loadConfig(command, argvOf(command), env, CWD);
      for (const name of read) everyRead.add(name);
      const expected = settingsFor(command).flatMap(([, setting]) => envNames(setting));
      assert.deepEqual([...read].sort(), [...new Set(expected)].sort(), command);
    }
    assert.deepEqual([...everyRead].sort(), [...new Set(rows.flatMap(([, setting]) => envNames(setting)))].sort());
  });

  it('names no environment variable in code that reads one, outside the table', async () => {
    const files = (await readdir(path.join(REPO, 'src'), { recursive: true })).filter(
      (file) => file.endsWith('.ts') && file !== 'options.ts',
    );
    for (const file of files) {
      const source = await readFile(path.join(REPO, 'src', file), 'utf8');
      assert.doesNotMatch(
        source,
        /\benv\s*\[\s*['"`]|process\.env\s*(\.[A-Za-z_]|\[\s*['"`])/,
        `${file} reads a variable by its literal name`,
      );
    }
  });
});

describe('each command gets the settings it declares', () => {
  it('holds, for every command, exactly the settings whose rows list it', () => {
    for (const command of COMMANDS) {
      const config = loadConfig(command, argvOf(command), envOf(command), CWD);
      const fields = Object.keys(config).filter((key) => !['command', 'childCommand', 'childEnv', 'unknownVariables'].includes(key));
      const held = new Set(fields.flatMap((field) => FIELDS[field as keyof typeof FIELDS] ?? [`unknown field ${field}`]));
      // --help is answered before the configuration is read.
      const declared = settingsFor(command)
        .map(([name]) => name)
        .filter((name) => name !== 'help');
      assert.deepEqual([...held].sort(), [...declared].sort(), command);
    }
  });

  it('puts together in one field only settings that the same commands take', () => {
    for (const [field, names] of Object.entries(FIELDS)) {
      const takers = names.map((name) => COMMANDS.filter((command) => settingsFor(command).some(([taken]) => taken === name)).join());
      assert.equal(new Set(takers).size, 1, field);
    }
  });

  it('types each command to its own settings', () => {
    const status: ConfigOf<'status'> = loadConfig('status', [], {}, CWD);
    const sidecar: ConfigOf<'sidecar'> = loadConfig('sidecar', [], {}, CWD);
    // @ts-expect-error status takes no --listen: reading it does not compile (the build of the tests fails).
    const listen: unknown = status.listen;
    assert.equal(listen, undefined);
    assert.deepEqual(sidecar.listen, SETTINGS.listen.default);
    // @ts-expect-error sidecar does not declare --yes.
    assert.equal(sidecar.yes, undefined);
  });
});
