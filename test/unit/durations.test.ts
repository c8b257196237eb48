// Every duration setting takes a unit (250ms, 30s, 5m, 1h, 7d), as flag and as environment variable alike; a
// bare number keeps the unit its variable names; each keeps its bounds, and its errors name the setting, the
// value and an example. Table-driven over the settings table, so a new duration row is tried the same way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMAND_SPECS } from '../../src/commands/index.js';
import { FIELDS, loadConfig } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';
import { commandHelp } from '../../src/help.js';
import { type Command, describeSetting, SETTINGS, type Setting, type SettingName, settingsFor } from '../../src/options.js';
import { formatDuration, MAX_DURATION_MS } from '../../src/setting-parsers.js';

const rows = Object.entries(SETTINGS) as Array<[SettingName, Setting]>;
const durations = rows.filter(([, setting]) => setting.parse.duration !== undefined);

/** A row that reads like a duration by its name: it must parse as one. */
const NAMED_LIKE_A_DURATION = /(^|-)(wait|ttl|debounce|delay|interval|quiet|timeout|period|every|age)(-|$)/;
const VARIABLE_LIKE_A_DURATION = /_(MS|SECONDS|INTERVAL|TIMEOUT|TTL|WAIT|DELAY|PERIOD)$/;

/** Text → ms, whatever the row (units are the same for every duration). */
const WITH_UNITS: Array<[string, number]> = [
  ['250ms', 250],
  ['30s', 30_000],
  ['5m', 300_000],
  ['1h', 3_600_000],
  ['7d', 604_800_000],
  ['1h30m', 5_400_000],
  ['1.5s', 1_500],
  [' 2s ', 2_000],
  ['24d', MAX_DURATION_MS],
];
const NOT_DURATIONS = ['soon', '1x', '-1s', '1 s', '1S', '1.5', 's', '', '1s2', '0.5ms'];

function fieldOf(name: SettingName): string {
  const field = Object.entries(FIELDS).find(([, names]) => names[0] === name)?.[0];
  assert.ok(field, `${name} has a configuration field`);
  return field;
}

function load(command: Command, argv: string[], env: Record<string, string>): Record<string, unknown> {
  return loadConfig(command, command === 'run' ? [...argv, '--', 'node', 'bot.js'] : argv, env, '/srv') as unknown as Record<
    string,
    unknown
  >;
}

describe('duration settings', () => {
  it('are every row named like a duration, each with the bare unit its variable names', () => {
    assert.ok(durations.length >= 11, `duration rows: ${durations.map(([name]) => name).join(', ')}`);
    for (const [name, setting] of rows) {
      if (NAMED_LIKE_A_DURATION.test(name) || VARIABLE_LIKE_A_DURATION.test(setting.env ?? '')) {
        assert.ok(setting.parse.duration, `${name} (${setting.env}) reads like a duration but does not parse one`);
      }
    }
    for (const [name, setting] of durations) {
      const expected = setting.env?.endsWith('_MS') ? 'ms' : setting.env?.endsWith('_SECONDS') ? 's' : null;
      assert.equal(setting.parse.duration!.bareUnit, expected, `${name}: a bare number is in the unit of ${setting.env}`);
      assert.equal(setting.value, 'DURATION', `${name}: help shows DURATION`);
      assert.ok(setting.parse.duration!.maxMs <= MAX_DURATION_MS, `${name}: no longer than a Node.js timer holds`);
    }
  });

  for (const [name, setting] of durations) {
    const rule = setting.parse.duration!;
    const label = describeSetting(name, setting);
    const within = (ms: number) => ms >= rule.minMs && ms <= rule.maxMs;

    it(`--${name}: takes every unit, keeps its bounds, and says what is wrong`, () => {
      for (const [text, ms] of WITH_UNITS) {
        if (within(ms)) assert.equal(setting.parse(text, label), ms, `${name} ${text}`);
        else
          assert.throws(
            () => setting.parse(text, label),
            (error: unknown) =>
              error instanceof UsageError &&
              error.message.includes(label) &&
              error.message.includes(JSON.stringify(text)) &&
              error.message.includes(`at least ${formatDuration(rule.minMs)}`),
            `${name} ${text} is out of bounds`,
          );
      }
      // A bare number keeps the row's unit; a row without one refuses it.
      const bare = rule.bareUnit === 's' ? 7_000 : 7;
      if (rule.bareUnit === null) assert.throws(() => setting.parse('7', label), /with its unit/, name);
      else if (within(bare)) assert.equal(setting.parse('7', label), bare, `${name} 7`);
      else assert.throws(() => setting.parse('7', label), /at least/, `${name} 7`);
      for (const text of NOT_DURATIONS) {
        assert.throws(
          () => setting.parse(text, label),
          (error: unknown) =>
            error instanceof UsageError &&
            error.message.startsWith(`invalid ${label} ${JSON.stringify(text)}: `) &&
            /such as \d+(ms|s|m|h|d)\b/.test(error.message),
          `${name} ${JSON.stringify(text)}`,
        );
      }
      if (rule.minMs > 0)
        assert.throws(() => setting.parse(formatDuration(rule.minMs - 1), label), /at least/, `${name} below its minimum`);
      assert.throws(() => setting.parse('25d', label), /at most 24d/, `${name} over 24 days`);
      assert.equal(setting.parse(formatDuration(rule.minMs), label), rule.minMs, `${name} at its minimum`);
    });

    it(`--${name}: the flag and ${setting.env} give the same value to the configuration`, () => {
      const command = (setting.commands ?? ['restore'])[0]!;
      const field = fieldOf(name);
      const fromFlag = load(command, [`--${name}`, '5m'], {});
      assert.equal(fromFlag[field], 300_000, `${command} --${name} 5m`);
      const variable = setting.env;
      assert.ok(variable, `${name} has an environment twin`);
      const fromEnv = load(command, [], { [variable]: '5m' });
      assert.equal(fromEnv[field], 300_000, `${command} ${variable}=5m`);
      if (rule.bareUnit !== null) {
        const bare = rule.bareUnit === 's' ? '300' : '300000';
        assert.equal(load(command, [], { [variable]: bare })[field], 300_000, `${variable}=${bare}`);
      }
      assert.throws(() => load(command, [], { [variable]: 'soon' }), new RegExp(`invalid ${label} "soon"`));
    });
  }

  it("says in each command's help how durations are written, where it takes any", () => {
    for (const [command, spec] of COMMAND_SPECS) {
      const help = commandHelp(spec);
      const takes = settingsFor(command).some(([, setting]) => setting.parse.duration);
      assert.equal(help.includes('\n\nDurations: a number with its unit (ms, s, m, h, d), such as 250ms, 30s'), takes, command);
    }
    const sidecar = commandHelp(COMMAND_SPECS.get('sidecar')!);
    assert.match(
      sidecar,
      /a bare number is in the unit its variable names \(_MS: milliseconds, _SECONDS: seconds\); --heartbeat-interval takes no bare number\.$/,
    );
  });

  it('writes a duration back exactly, in its longest whole unit', () => {
    assert.deepEqual([0, 1, 250, 1_000, 1_500, 60_000, 90_000, 3_600_000, 86_400_000, MAX_DURATION_MS].map(formatDuration), [
      '0s',
      '1ms',
      '250ms',
      '1s',
      '1500ms',
      '1m',
      '90s',
      '1h',
      '1d',
      '24d',
    ]);
  });

  it('compares --max-delay with --debounce whatever units they are given in', () => {
    assert.equal(loadConfig('sidecar', ['--debounce', '2s', '--max-delay', '2000'], {}, '/srv').maxDelayMs, 2000);
    assert.throws(
      () => loadConfig('sidecar', ['--debounce', '2s', '--max-delay', '1500ms'], {}, '/srv'),
      /--max-delay \(1500ms\) is shorter than --debounce \(2s\)/,
    );
  });
});
