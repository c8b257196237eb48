// Writes the README's configuration table from the settings table (src/options.ts), between the
// settings markers. `npm run docs` runs it; test/unit/docs.test.ts fails while the README lags behind.
// Usage: node build/scripts/docs.js [--check]
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS, envNames, SETTINGS, type Setting, shownDefault } from '../src/options.js';

export const README = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md');
export const SETTINGS_START = '<!-- settings:start (generated from src/options.ts by npm run docs) -->';
export const SETTINGS_END = '<!-- settings:end -->';

/** The configuration table as Markdown: one row per setting, in table order. */
export function settingsMarkdown(): string {
  const rows = (Object.entries(SETTINGS) as Array<[string, Setting]>).map(([name, setting]) => {
    const flag = setting.flag ? `\`--${name}${setting.value ? ` ${setting.value}` : ''}\`` : '—';
    const env =
      envNames(setting)
        .map((variable) => `\`${variable}\``)
        .join(' / ') || (setting.oneShot ? '— (one-shot)' : '—');
    const usedBy = setting.commands ? COMMANDS.filter((command) => setting.commands!.includes(command)).join(', ') : 'all';
    const see = setting.see ? ` (see [${setting.see[0]}](${setting.see[1]}))` : '';
    return `| ${flag} | ${env} | ${shownDefault(setting)} | ${usedBy} | ${setting.help}${see} |`;
  });
  const oneShot = (Object.entries(SETTINGS) as Array<[string, Setting]>)
    .filter(([, setting]) => setting.oneShot)
    .map(([name, setting]) => `- \`--${name}\`: ${setting.oneShot}.`);
  return [
    '| flag | env | default | used by | meaning |',
    '|---|---|---|---|---|',
    ...rows,
    '',
    '**One-shot flags** have no environment variable on purpose: each is given with the command it is meant for.',
    '',
    ...oneShot,
  ].join('\n');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** `text` with the block between the markers replaced by `block`; throws when a marker is missing. */
export function replaceBlock(text: string, start: string, end: string, block: string): string {
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from === -1 || to < from) throw new Error(`the README lacks the markers ${start} … ${end}`);
  return `${text.slice(0, from + start.length)}\n${block}\n${text.slice(to)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = await readFile(README, 'utf8');
  const updated = replaceBlock(text, SETTINGS_START, SETTINGS_END, settingsMarkdown());
  if (process.argv.includes('--check')) {
    if (updated !== text) {
      process.stderr.write('README.md: the configuration table is out of date; run npm run docs\n');
      process.exitCode = 1;
    }
  } else if (updated !== text) {
    await writeFile(README, updated);
    process.stdout.write('README.md: configuration table updated\n');
  }
}
