// How commands show results: lines and JSON on stdout, aligned tables, sizes, and the encryption notice.
import type { Context } from './command.js';

/** Writes one line of a command's result to stdout. */
export function print(ctx: Context, line: string): void {
  ctx.stdout.write(`${line}\n`);
}

/** Writes `value` to stdout as indented JSON, one document. */
export function printJson(ctx: Context, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A byte count as people read it: `512 B`, `1.5 KiB`, `2.0 MiB` (binary units, one decimal). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Renders rows as aligned columns under a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Says at start whether contents are encrypted, and under which key id (never the key). */
export function logEncryption(ctx: Context): void {
  const keys = ctx.config.encryption;
  const required = ctx.config.requireEncryption;
  if (keys) {
    ctx.log.info(
      { encryption: 'on', keyId: keys.writer.id, keys: keys.keys.length, required },
      `encryption at rest is on: new rows are encrypted with key id ` +
        `${keys.writer.id}${required ? '; plaintext stored rows are refused (KEEPER_REQUIRE_ENCRYPTION)' : ''}`,
    );
  } else
    ctx.log.info(
      { encryption: 'off' },
      'encryption at rest is off: file contents are stored in plaintext (set KEEPER_ENCRYPTION_KEY to encrypt them)',
    );
}
