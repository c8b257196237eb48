// A node out of inotify instances, made for one throwaway user without touching any system setting:
// how native watching is made to fail for real (it then falls back to polling, or says why not).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** A Python that a throwaway user can run (pyenv shims under /root are not reachable for it), or null. */
export function systemPython(uid: number): string | null {
  for (const candidate of ['/usr/bin/python3', '/usr/local/bin/python3']) {
    if (spawnSync(candidate, ['-c', 'import ctypes'], { uid, gid: uid }).status === 0) return candidate;
  }
  return null;
}

/**
 * Uses up every inotify instance the user may have (fs.inotify.max_user_instances, per user, shared
 * by all of that user's processes on the node) — the state of a busy Kubernetes node — without
 * touching any system setting. Resolves once the kernel has refused one more; kill the process to
 * give them back.
 */
export async function exhaustInotify(uid: number, python = systemPython(uid)): Promise<ChildProcess> {
  assert.ok(python, `no python3 that uid ${uid} can run`);
  const program = [
    'import ctypes, os, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'held = 0',
    'while libc.inotify_init() >= 0: held += 1',
    'print(held, os.strerror(ctypes.get_errno()), flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn(python, ['-c', program], { uid, gid: uid, stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.trim());
    });
    child.once('exit', (code) => reject(new Error(`the inotify exhauster exited (${code})`)));
  });
  assert.match(line, /^\d+ Too many open files$/, `the kernel refused an inotify instance: ${line}`);
  return child;
}
