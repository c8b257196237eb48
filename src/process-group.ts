// The bot as a process tree: `npm start` → sh → node bot.js, shell wrappers, pipelines. Started as the
// leader of a process group of its own, signalled as a group, and counted as exited only when no
// process of the group is left — so a final backup never runs while a grandchild is still writing.
// A process started from the group that leaves it (setsid: `pm2 start`'s daemon, `setsid node bot.js &`)
// is noticed while the group runs, so that `run` can name what is left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sleep, systemClock, type Clock } from './clock.js';

/** How often the group is checked for members once its leader has exited, ms. */
const GROUP_POLL_MS = 50;
/**
 * How often the process table is read for processes that left the group, ms: `pm2 start` keeps its new
 * daemon as a child for a second or more, a wrapper script that starts a setsid'd bot and then waits for
 * it, for ever. A process that leaves and is orphaned within one period can be missed (its writes are
 * still seen by `run`'s comparison of the directory).
 */
export const ESCAPE_SCAN_MS = 250;

/** A process started from the group that moved to another process group, as seen in /proc. */
export interface LeftProcess {
  pid: number;
  /** The kernel's command name (/proc/PID/stat comm, at most 15 characters). */
  command: string;
}

interface ProcStat {
  pid: number;
  command: string;
  state: string;
  ppid: number;
  pgrp: number;
  /** Start time since boot, in clock ticks: with the pid, identifies a process across pid reuse. */
  startTime: string;
}

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

  private readonly escaped = new Map<number, { command: string; startTime: string }>();
  private tracker: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;

  /**
   * Starts noticing processes started from the group that leave it (Linux /proc; elsewhere nothing is
   * noticed), every `intervalMs` until stopTracking(). Call once `started` has resolved.
   */
  track(intervalMs = ESCAPE_SCAN_MS): void {
    if (this.tracker !== null) return;
    this.tracker = setInterval(() => void this.scan(), intervalMs);
    this.tracker.unref();
    void this.scan();
  }

  /**
   * Stops tracking after one last look, and returns the processes that left the group while it was
   * tracked and are still alive (not zombies), by pid.
   */
  async stopTracking(): Promise<LeftProcess[]> {
    if (this.tracker !== null) clearInterval(this.tracker);
    this.tracker = null;
    await this.scan();
    const table = new Map((await readProcesses()).map((proc) => [proc.pid, proc]));
    const left: LeftProcess[] = [];
    for (const [pid, seen] of this.escaped) {
      const now = table.get(pid);
      if (now && now.startTime === seen.startTime && living(now)) left.push({ pid, command: await commandLine(pid, seen.command) });
    }
    return left.sort((a, b) => a.pid - b.pid);
  }

  /** One look at the process table: descendants of the group's members that are in another group. */
  private scan(): Promise<void> {
    const pgid = this.child.pid;
    if (pgid === undefined) return Promise.resolve();
    this.scanning ??= (async () => {
      const table = await readProcesses();
      // A child of a member (a member orphaned by its parent's exit is still one) in another group left
      // it; what that one starts in turn is its own business.
      const members = new Set(table.filter((proc) => proc.pgrp === pgid).map((proc) => proc.pid));
      for (const proc of table) {
        if (proc.pgrp !== pgid && members.has(proc.ppid) && !this.escaped.has(proc.pid))
          this.escaped.set(proc.pid, { command: proc.command, startTime: proc.startTime });
      }
    })().finally(() => (this.scanning = null));
    return this.scanning;
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

/** The pids in /proc, or null where there is no /proc (not Linux). */
async function listPids(): Promise<number[] | null> {
  const entries = await readdir('/proc').catch(() => null);
  return entries === null ? null : entries.filter((entry) => /^\d+$/.test(entry)).map(Number);
}

/** /proc/PID/stat, parsed; null when the process is gone. */
async function readProcess(pid: number): Promise<ProcStat | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // pid (comm) state ppid pgrp … starttime (field 22); comm may contain spaces and parentheses, so split after the last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return {
    pid,
    command: stat.slice(stat.indexOf('(') + 1, close),
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTime: fields[19] ?? '',
  };
}

/** Every process in /proc (Linux); [] where there is none. Processes that vanish meanwhile are left out. */
async function readProcesses(): Promise<ProcStat[]> {
  const table: ProcStat[] = [];
  for (const pid of (await listPids()) ?? []) {
    const proc = await readProcess(pid);
    if (proc) table.push(proc);
  }
  return table;
}

const living = (proc: ProcStat) => proc.state !== 'Z' && proc.state !== 'X';

/**
 * Whether a process of group `pgid` is alive and not a zombie. kill(-pgid, 0) also succeeds for a
 * zombie nobody reaps (when we are PID 1 without an init), so on Linux /proc decides; elsewhere the
 * kill answer stands.
 */
async function livingMembers(pgid: number): Promise<boolean> {
  const pids = await listPids();
  if (pids === null) return true;
  for (const pid of pids) {
    const proc = await readProcess(pid);
    if (proc?.pgrp === pgid && living(proc)) return true;
  }
  return false;
}

/**
 * What an operator recognises process `pid` by: its command line (the program's base name and its first
 * arguments, at most 80 characters) from /proc/PID/cmdline; `fallback` (the kernel's comm) when that cannot
 * be read. The comm alone can be a thread's name (Node 24 names its main thread "MainThread").
 */
async function commandLine(pid: number, fallback: string): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const [program, ...args] = raw.split('\0').filter((part) => part !== '');
  if (program === undefined) return fallback;
  const text = [path.basename(program), ...args.slice(0, 3)].join(' ');
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}
