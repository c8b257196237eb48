// Writes what the docs quote from elsewhere, so that it cannot drift: the README's configuration table
// from the settings table (src/options.ts), between the settings markers, and every excerpt of a
// repository file (a Dockerfile, railway.json, …) in the Markdown files, between excerpt markers.
// `npm run docs` runs it; test/unit/docs.test.ts fails while a document lags behind.
// Usage: node build/scripts/docs.js [--check]
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS, envNames, SETTINGS, type Setting, shownDefault } from '../src/options.js';

/** The repository's root (this file runs from build/scripts/). */
export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const README = path.join(ROOT, 'README.md');
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

/**
 * An excerpt region: the start marker names a repository file (relative to the root) and options,
 * then the fenced block written from that file, then the end marker. Options: `without-comments` drops
 * its comment lines (`#`), and blank lines left in a row, so a long, commented file shows as what it
 * does (its comments stay in the file, which the text links to).
 */
export const EXCERPT =
  /<!-- excerpt:start (\S+)((?: [a-z-]+)*) \(written from the file by npm run docs\) -->\n([\s\S]*?)<!-- excerpt:end -->/g;
const EXCERPT_OPTIONS = new Set(['without-comments']);

/** The fence language of a quoted file, by its name. */
function language(file: string): string {
  const name = path.basename(file);
  if (name === 'Dockerfile' || name.startsWith('Dockerfile.')) return 'dockerfile';
  const extension = path.extname(name).slice(1);
  return (
    ({ yml: 'yaml', yaml: 'yaml', json: 'json', sh: 'sh', js: 'js', ts: 'ts', toml: 'toml' } as Record<string, string>)[extension] ?? ''
  );
}

/**
 * The fenced block an excerpt of `text` (the file `file`'s contents) shows with `options`. Throws on an
 * unknown option, or a file holding a fence (it would end the block early).
 */
export function excerptBlock(file: string, text: string, options: readonly string[]): string {
  for (const option of options) if (!EXCERPT_OPTIONS.has(option)) throw new Error(`excerpt of ${file}: unknown option ${option}`);
  let lines = text.replace(/\n$/, '').split('\n');
  if (options.includes('without-comments')) {
    lines = lines.filter((line) => !line.trim().startsWith('#'));
    lines = lines.filter((line, index) => line.trim() !== '' || (index > 0 && lines[index - 1]!.trim() !== ''));
    while (lines.length > 0 && lines[0]!.trim() === '') lines.shift();
    while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop();
  }
  if (lines.some((line) => line.trimStart().startsWith('```'))) throw new Error(`excerpt of ${file}: the file holds a code fence`);
  return `\`\`\`${language(file)}\n${lines.join('\n')}\n\`\`\``;
}

/**
 * `text` (a Markdown file's contents) with every excerpt region rewritten from the file it names,
 * read by `read` (a path relative to the repository root). Rejects when a named file cannot be read.
 */
export async function updateExcerpts(text: string, read: (file: string) => Promise<string>): Promise<string> {
  const regions = [...text.matchAll(EXCERPT)];
  const blocks = await Promise.all(
    regions.map(async (match) => excerptBlock(match[1]!, await read(match[1]!), match[2]!.trim().split(' ').filter(Boolean))),
  );
  let result = '';
  let from = 0;
  regions.forEach((match, index) => {
    const head = match[0].slice(0, match[0].indexOf('\n') + 1);
    result += `${text.slice(from, match.index)}${head}${blocks[index]}\n<!-- excerpt:end -->`;
    from = match.index + match[0].length;
  });
  return result + text.slice(from);
}

/** Reads a repository file for an excerpt; the error names the file and says it is quoted. */
export function readRepositoryFile(file: string): Promise<string> {
  return readFile(path.join(ROOT, file), 'utf8').catch((error: Error) => {
    throw new Error(`an excerpt names ${file}, which cannot be read: ${error.message}`);
  });
}

/** The Markdown files that may quote repository files, relative to the root: the README, docs/, and the READMEs of deploy/ and charts/. */
export async function markdownFiles(): Promise<string[]> {
  const found = ['README.md'];
  for (const dir of ['docs', 'deploy', 'charts']) {
    for (const entry of await readdir(path.join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith('.md')) found.push(path.relative(ROOT, path.join(entry.parentPath, entry.name)));
    }
  }
  return found.sort();
}

/** Every Markdown file as `npm run docs` writes it: path (relative to the root) → [current text, updated text]. */
export async function documents(): Promise<Map<string, [string, string]>> {
  const result = new Map<string, [string, string]>();
  for (const file of await markdownFiles()) {
    const text = await readFile(path.join(ROOT, file), 'utf8');
    let updated = await updateExcerpts(text, readRepositoryFile);
    if (file === 'README.md') updated = replaceBlock(updated, SETTINGS_START, SETTINGS_END, settingsMarkdown());
    result.set(file, [text, updated]);
  }
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const stale: string[] = [];
  for (const [file, [text, updated]] of await documents()) {
    if (updated === text) continue;
    stale.push(file);
    if (!process.argv.includes('--check')) {
      await writeFile(path.join(ROOT, file), updated);
      process.stdout.write(`${file}: generated parts updated\n`);
    }
  }
  if (process.argv.includes('--check') && stale.length > 0) {
    process.stderr.write(`out of date (the configuration table or an excerpt): ${stale.join(', ')}; run npm run docs\n`);
    process.exitCode = 1;
  }
}
