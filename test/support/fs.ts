import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** A temporary directory removed after the calling file's tests. */
export async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `bk-${label}-`));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
