// An earlier commit of this repository built as users run it (the single-file CLI), so that a bench part
// measures before and after in one run on one machine: `npm run bench -- --baseline REF`.
import { execFile } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../harness/paths.js';

const run = promisify(execFile);

export interface Baseline {
  /** What the report calls it: the commit's short hash and subject. */
  label: string;
  /** The bundled CLI of that commit. */
  script: string;
}

/**
 * Extracts `ref` (any git revision) into `work`/baseline and bundles its CLI with this checkout's
 * node_modules (the dependencies of a nearby commit; a ref whose lock file differs may not build).
 * Throws with git's or the bundler's message when the ref is unknown or does not build.
 */
export async function buildBaseline(ref: string, work: string): Promise<Baseline> {
  const dir = path.join(work, 'baseline');
  await mkdir(dir, { recursive: true });
  const { stdout: label } = await run('git', ['-C', REPO, 'log', '-1', '--format=%h %s', ref]);
  await run('bash', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'bash', REPO, ref, dir]);
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  await run(process.execPath, ['scripts/generate-sources.mjs'], { cwd: dir });
  await run(process.execPath, ['scripts/bundle.mjs'], { cwd: dir });
  return { label: label.trim(), script: path.join(dir, 'dist', 'baileys-keeper.mjs') };
}
