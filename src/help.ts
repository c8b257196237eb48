// The text of `--help`: the command list, and each command's settings from the settings table.
import type { CommandSpec } from './commands/command.js';
import { envNames, type Setting, settingsFor, shownDefault } from './options.js';
import { formatDuration, MAX_DURATION_MS } from './setting-parsers.js';
import { VERSION } from './version.js';

/** `baileys-keeper --help`: what the tool is, its commands with their summaries, the exit codes. */
export function usage(commands: Iterable<CommandSpec>): string {
  const lines = [...commands].map((spec) => `  ${spec.name.padEnd(13)} ${spec.summary}`).join('\n');
  return `baileys-keeper ${VERSION}: keeps a Baileys auth directory safe in PostgreSQL

Usage: baileys-keeper <command> [options]

Commands:
${lines}

Run 'baileys-keeper <command> --help' for its options; --version (or -v, -V) prints the version.
Exit codes: 0 ok, 1 error, 2 database unreachable, 3 nothing to restore / no such session,
4 integrity failure, 64 usage error.`;
}

/** `baileys-keeper <command> --help`: its flags (with env twin and default), then its environment-only settings. */
export function commandHelp(spec: CommandSpec): string {
  const settings = settingsFor(spec.name);
  const flags = settings
    .filter(([, setting]) => setting.flag)
    .map(([name, setting]) => row(`--${name}${setting.value ? ` ${setting.value}` : ''}`, setting));
  const envOnly = settings.filter(([, setting]) => !setting.flag).map(([, setting]) => row(envNames(setting).join(' | '), setting));
  const sections = [`baileys-keeper ${spec.name}: ${spec.summary}`, `Options:\n${flags.join('\n')}`];
  if (envOnly.length > 0) sections.push(`Environment only:\n${envOnly.join('\n')}`);
  const durations = durationsNote(settings);
  if (durations) sections.push(durations);
  return sections.join('\n\n');
}

/**
 * How the command's duration settings are written (SPEC "Command options"), or null when it has none. The rule
 * for a bare number is said by the variable's name; test/unit/settings.test.ts holds each row to it.
 */
export function durationsNote(settings: ReadonlyArray<[string, Setting]>): string | null {
  const durations = settings.filter(([, setting]) => setting.parse.duration);
  if (durations.length === 0) return null;
  const unitOnly = durations.filter(([, setting]) => setting.parse.duration!.bareUnit === null).map(([name]) => `--${name}`);
  const bare =
    durations.length > unitOnly.length ? ['a bare number is in the unit its variable names (_MS: milliseconds, _SECONDS: seconds)'] : [];
  const only = unitOnly.length > 0 ? [`${unitOnly.join(', ')} ${unitOnly.length === 1 ? 'takes' : 'take'} no bare number`] : [];
  return `Durations: a number with its unit (ms, s, m, h, d), such as 250ms, 30s, 5m, 7d or 1h30m, at most ${formatDuration(MAX_DURATION_MS)}${[...bare, ...only].map((text) => `; ${text}`).join('')}.`;
}

function row(label: string, setting: Setting): string {
  const notes = [
    ...(setting.flag && setting.env ? [`env ${setting.env}`] : []),
    // Said where an operator looks for the variable: this flag has none on purpose (options.ts: oneShot).
    ...(setting.oneShot ? ['one-shot: no env'] : []),
    ...(setting.kind === 'string' ? [`default ${shownDefault(setting)}`] : []),
  ];
  const text = `${setting.help}${notes.length > 0 ? ` [${notes.join('; ')}]` : ''}`;
  return label.length < 26 ? `  ${label.padEnd(26)} ${text}` : `  ${label}\n  ${' '.repeat(26)} ${text}`;
}
