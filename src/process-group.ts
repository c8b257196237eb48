// The bot as a process tree: `npm start` → sh → node bot.js, shell wrappers, pipelines. Started as the
// leader of a process group of its own, signalled as a group, and counted as exited only when no
// process of the group is left — so a final backup never runs while a grandchild is still writing.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { sleep, systemClock, type Clock } from './clock.js';

/** How often the group is checked for members once its leader has exited, ms. */
const GROUP_POLL_MS = 50;

export interface GroupExit {
  /** The leader's exit code, or 128 + signal number when a signal ended it (as shells report it). */
  code: number;
}

/**
 * A command running as the leader of a new process group (and session: `detached`), with inherited
 * stdio. Throws nothing; a command that cannot be started is reported by `started` rejecting.
 */
export class ProcessGroup {
  readonly child: ChildProcess;
  /** Resolves once the command runs; rejects with the spawn error (ENOENT, EACCES) if it cannot. */
  readonly started: Promise<void>;
  /** Resolves when the leader exits (its code), whatever the rest of the group does. */
  readonly leaderExited: Promise<GroupExit>;

  constructor(command: readonly string[], env: Readonly<Record<string, string>>) {
    const [file, ...args] = command as [string, ...string[]];
    // detached: setsid(), so the child leads a new process group whose id is its pid. The terminal's
    // Ctrl-C then reaches only us (the foreground group), and we forward it to the whole group.
    this.child = spawn(file, args, { stdio: 'inherit', env, detached: true });
    this.started = new Promise((resolve, reject) => {
      this.child.once('spawn', resolve);
      this.child.once('error', reject);
    });
    this.leaderExited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0) })),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends `signal` to every process of the group; false when none is left. */
  signal(signal: NodeJS.Signals): boolean {
    const pid = this.child.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, signal);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw error;
    }
  }

  /** True while a process of the group is alive (zombies waiting to be reaped do not count). */
  async alive(): Promise<boolean> {
    const pid = this.child.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, 0);
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ESRCH';
    }
    return livingMembers(pid);
  }

  /**
   * Resolves once the leader has exited and no process of the group is left, or when `timeoutMs`
   * has passed (then false). `timeoutMs` Infinity waits for ever.
   */
  async exited(timeoutMs: number, clock: Clock = systemClock): Promise<boolean> {
    const deadline = clock.now() + timeoutMs;
    let leaderDone = false;
    void this.leaderExited.then(() => (leaderDone = true));
    for (;;) {
      if (leaderDone && !(await this.alive())) return true;
      const left = deadline - clock.now();
      if (left <= 0) return false;
      await sleep(clock, Math.min(GROUP_POLL_MS, left));
    }
  }
}

/**
 * Whether a process of group `pgid` is alive and not a zombie. kill(-pgid, 0) also succeeds for a
 * zombie nobody reaps (when we are PID 1 without an init), so on Linux /proc decides; elsewhere the
 * kill answer stands.
 */
async function livingMembers(pgid: number): Promise<boolean> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}
