// A throwaway user for tests of what the keeper may not read: the tests run as root, which reads
// everything, so the process under test runs as a uid that owns nothing (no passwd entry needed).
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmod } from 'node:fs/promises';

/** CI runs as root and sets this, so a test that needs another uid cannot silently skip there. */
export const UID_SWITCH_REQUIRED = process.env['KEEPER_TEST_REQUIRE_UID_SWITCH'] === '1';

export interface OtherUser {
  uid: number;
  gid: number;
}

/**
 * A uid/gid pair in 40000..59999 that owns no file and can run this node, or the reason it cannot be
 * had (not root); throws instead when KEEPER_TEST_REQUIRE_UID_SWITCH=1.
 */
export function otherUser(): OtherUser | { skip: string } {
  const uid = 40_000 + randomInt(20_000);
  let why: string | null = null;
  if (process.getuid?.() !== 0) why = 'needs root to act as a throwaway user';
  else if (spawnSync(process.execPath, ['-e', ''], { uid, gid: uid }).status !== 0) why = `uid ${uid} cannot run ${process.execPath}`;
  if (why === null) return { uid, gid: uid };
  if (UID_SWITCH_REQUIRED) throw new Error(`KEEPER_TEST_REQUIRE_UID_SWITCH=1 but ${why}`);
  return { skip: why };
}

/** Lets every user enter and list `dirs` (mkdtemp makes them 0700), so the throwaway user reaches what is inside. */
export async function openToAll(...dirs: string[]): Promise<void> {
  for (const dir of dirs) await chmod(dir, 0o755);
}
