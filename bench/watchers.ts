// The watcher side by side: a bare fs.watch, chokidar's native backend (what the keeper uses) and its
// polling backend (the fallback), each in a process of its own on the same directory, in one run.
// Per watcher: start-up time, RSS and idle CPU (RSS also as the increase over a Node process that
// watches nothing), and under a burst of writes how many events arrive, whether every file's last
// write is reported, and how late. And a fleet's watchers (bench/fleet-watch.ts): one chokidar instance
// per session directory against one instance watching all of them.
import { spawn } from 'node:child_process';
import { readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { WatchBackend } from '../src/watch/chokidar.js';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'watch-probe.js');
export const WATCHER_KINDS = ['none', 'fs-watch', 'chokidar-native', 'chokidar-polling'] as const;
export type WatcherKind = (typeof WATCHER_KINDS)[number];

export interface WatcherPlan {
  /** Idle time over which RSS and CPU are read, s. */
  idleSeconds: number;
  /** Writes per second in the burst, and for how long, s. */
  writesPerSecond: number;
  burstSeconds: number;
  /** Files the burst spreads its writes over. */
  burstFiles: number;
  /** Polling period, ms (the keeper's --poll-interval default). */
  pollIntervalMs: number;
}

export interface WatcherRow {
  kind: WatcherKind;
  files: number;
  readyMs: number;
  rssBytes: number;
  cpuPercentOfOneCore: number;
  writes: number;
  events: number;
  /** Files whose last write was followed by an event for them (1 = nothing missed). */
  lastWriteCoverage: number;
  /** Time from the start of a file's last write to the first event for it from then on, ms. */
  detectP50Ms: number;
  detectP99Ms: number;
}

const CLOCK_TICKS = 100; // Linux USER_HZ
const cpuTicks = async (pid: number) => {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
};
const rssOf = async (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Starts watch-probe.js with `args` (after node's `nodeFlags`); resolves once it says it is watching, with its start-up time, ms. */
async function startProbe(args: string[], nodeFlags: string[] = []) {
  const child = spawn(process.execPath, [...nodeFlags, PROBE, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => JSON.parse(((await lines.next()).value as string | undefined) ?? 'null') as Record<string, unknown>;
  const { ready } = (await next()) as { ready: number };
  return { child, next, ready };
}

/** Watches process `pid` for `seconds`: its highest RSS (bytes) and its CPU as a fraction of one core. */
async function atRest(pid: number, seconds: number): Promise<{ rss: number; cpu: number }> {
  const ticks = await cpuTicks(pid);
  const started = performance.now();
  let rss = 0;
  for (let s = 0; s < seconds; s++) {
    await pause(1000);
    rss = Math.max(rss, await rssOf(pid));
  }
  return { rss, cpu: ((await cpuTicks(pid)) - ticks) / CLOCK_TICKS / ((performance.now() - started) / 1000) };
}

/** Measures one watcher kind on `dir` (which holds `files` files); writes its burst into `dir` too. */
export async function measureWatcher(kind: WatcherKind, dir: string, files: number, plan: WatcherPlan): Promise<WatcherRow> {
  const { child, next, ready } = await startProbe([kind, dir, String(plan.pollIntervalMs)]);
  await pause(1000); // past start-up
  const { rss, cpu } = await atRest(child.pid!, plan.idleSeconds);

  // The burst: writes spread over burstFiles files, each a different size so even polling can tell.
  const lastWrite = new Map<string, number>();
  const total = kind === 'none' ? 0 : plan.writesPerSecond * plan.burstSeconds;
  const burstStarted = Date.now();
  for (let i = 0; i < total; i++) {
    const name = `bench-watch-${kind}-${i % plan.burstFiles}.json`;
    // Stamped as the write starts: inotify reports the modification while writeFile is still running.
    lastWrite.set(name, Date.now());
    await writeFile(path.join(dir, name), JSON.stringify({ write: i, pad: 'x'.repeat(i % 97) }));
    const due = burstStarted + ((i + 1) * 1000) / plan.writesPerSecond;
    if (due > Date.now()) await pause(due - Date.now());
  }
  await pause(plan.pollIntervalMs * 2 + 500);
  child.stdin!.write('report\n');
  const { events, names } = (await next()) as { events: number; names: Record<string, number[]> };
  child.kill();
  await Promise.all([...lastWrite.keys()].map((name) => rm(path.join(dir, name), { force: true })));
  const delays: number[] = [];
  for (const [name, at] of lastWrite) {
    const after = (names[name] ?? []).find((t) => t >= at);
    if (after !== undefined) delays.push(after - at);
  }
  delays.sort((a, b) => a - b);
  return {
    kind,
    files,
    readyMs: ready,
    rssBytes: rss,
    cpuPercentOfOneCore: cpu * 100,
    writes: total,
    events,
    lastWriteCoverage: kind === 'none' ? NaN : delays.length / lastWrite.size,
    detectP50Ms: percentile(delays, 50),
    detectP99Ms: percentile(delays, 99),
  };
}

// ---------------------------------------------------------------- a fleet's watchers: one chokidar per session or one shared

export const FLEET_WATCH_KINDS = ['none', 'fleet-per-session', 'fleet-shared', 'fleet-direct'] as const;
export type FleetWatchKind = (typeof FLEET_WATCH_KINDS)[number];

export interface FleetWatchRow {
  kind: FleetWatchKind;
  backend: WatchBackend;
  sessions: number;
  filesPerSession: number;
  /** From the probe's start until every directory is watched, ms (module loading included). */
  readyMs: number;
  /** CPU spent until then, s of one core. */
  startCpuSeconds: number;
  /** Highest RSS over the idle period, bytes. */
  idleRssBytes: number;
  /** After a forced gc at the end: RSS and V8 heap used, bytes. */
  gcRssBytes: number;
  gcHeapUsedBytes: number;
  cpuPercentOfOneCore: number;
  /** inotify instances (file descriptors) the process holds, and the watches in them (none when polling). */
  inotifyInstances: number;
  inotifyWatches: number;
  /** Whether a write into one session's directory after the idle period was reported for that session. */
  routed: boolean;
}

/**
 * Measures one way of watching every sub-directory of `sessionsDir` (each holding `filesPerSession` files) in
 * a process of its own run with --expose-gc: start-up, RSS over `idleSeconds` of nothing written, CPU at
 * rest, memory after a gc; then writes one file into the middle session and checks it was reported.
 */
export async function measureFleetWatch(
  kind: FleetWatchKind,
  backend: WatchBackend,
  sessionsDir: string,
  sessions: string[],
  filesPerSession: number,
  plan: { idleSeconds: number; pollIntervalMs: number },
): Promise<FleetWatchRow> {
  const { child, next, ready } = await startProbe([kind, sessionsDir, String(plan.pollIntervalMs), backend], ['--expose-gc']);
  const startTicks = await cpuTicks(child.pid!);
  await pause(2000); // past start-up
  const { rss, cpu } = await atRest(child.pid!, plan.idleSeconds);
  const inotify = await inotifyOf(child.pid!);
  const probe = 'bench-fleet-watch.json';
  const target = sessions[Math.floor(sessions.length / 2)]!;
  await writeFile(path.join(sessionsDir, target, probe), '{}');
  await pause(plan.pollIntervalMs * 2 + 500);
  child.stdin!.write('report\n');
  const report = (await next()) as { names: Record<string, number[]>; rss: number; heapUsed: number };
  child.kill();
  await rm(path.join(sessionsDir, target, probe), { force: true });
  return {
    kind,
    backend,
    sessions: sessions.length,
    filesPerSession,
    readyMs: ready,
    startCpuSeconds: startTicks / CLOCK_TICKS,
    idleRssBytes: rss,
    gcRssBytes: report.rss,
    gcHeapUsedBytes: report.heapUsed,
    cpuPercentOfOneCore: cpu * 100,
    inotifyInstances: inotify.instances,
    inotifyWatches: inotify.watches,
    routed: kind === 'none' || (report.names[`${target}/${probe}`] ?? []).length > 0,
  };
}

/** The inotify instances a process holds (its file descriptors on anon_inode:inotify) and their watches. */
async function inotifyOf(pid: number): Promise<{ instances: number; watches: number }> {
  let instances = 0;
  let watches = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== 'anon_inode:inotify') continue;
    instances++;
    const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    watches += info.split('\n').filter((line) => line.startsWith('inotify wd:')).length;
  }
  return { instances, watches };
}
