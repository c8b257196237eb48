// Runs the keeper as a throwaway user while the test runs as root: the way to meet files and directories
// the keeper may not read (a bot running as root with umask 077 beside a keeper running as uid 1000, as
// our images do). CI runs as root and sets KEEPER_TEST_REQUIRE_UID_SWITCH=1, so such tests cannot skip there.
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmod, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from '../../harness/paths.js';

const isRoot = process.getuid?.() === 0;
const required = process.env['KEEPER_TEST_REQUIRE_UID_SWITCH'] === '1';

/** Why a test that needs another user must skip here, or false when it can run (never skips when required). */
export const throwawayUserSkip: string | false = isRoot || required ? false : 'needs root to run the keeper as a throwaway user';

export interface ThrowawayUser {
  uid: number;
  /** The single-file bundle, copied where the user can read it. */
  script: string;
  /** A node binary the user can run. */
  node: string;
  /** A directory (mode 0755, owned by root) for the test's files. */
  home: string;
}

/**
 * A fresh unprivileged uid with the built bundle and a node it can run (needs `npm run bundle` first),
 * both copied into `home` (an existing directory, made 0755; every directory above it must be searchable).
 */
export async function throwawayUser(home: string): Promise<ThrowawayUser> {
  const uid = 40_000 + randomInt(20_000);
  await chmod(home, 0o755);
  const script = path.join(home, 'baileys-keeper.mjs');
  await copyFile(path.join(REPO, 'dist', 'baileys-keeper.mjs'), script);
  let node = process.execPath;
  if (spawnSync(node, ['-e', ''], { uid, gid: uid }).status !== 0) {
    node = path.join(home, 'node');
    await copyFile(process.execPath, node);
  }
  return { uid, script, node, home };
}
