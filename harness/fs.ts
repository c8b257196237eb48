// What a directory holds, as the keeper sees it: for comparing an auth directory with a stored head.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** name → content (UTF-8) of the regular, non-hidden files directly in `dir`; rejects when `dir` cannot be read. */
export async function readTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile() && !entry.name.startsWith('.')) out.set(entry.name, await readFile(path.join(dir, entry.name), 'utf8'));
  }
  return out;
}
