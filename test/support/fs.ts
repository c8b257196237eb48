import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** A temporary directory removed after the calling file's tests. */
export async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `bk-${label}-`));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** name → content of the regular, non-hidden files directly in `dir`. */
export async function readTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile() && !entry.name.startsWith('.')) out.set(entry.name, await readFile(path.join(dir, entry.name), 'utf8'));
  }
  return out;
}
