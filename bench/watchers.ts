// The watcher side by side: a bare fs.watch, chokidar's native backend (what the keeper uses) and its
// polling backend (the fallback), each in a process of its own on the same directory, in one run.
// Per watcher: start-up time, RSS and idle CPU (RSS also as the increase over a Node process that
// watches nothing), and under a burst of writes how many events arrive, whether every file's last
// write is reported, and how late.
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

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

/** Measures one watcher kind on `dir` (which holds `files` files); writes its burst into `dir` too. */
export async function measureWatcher(kind: WatcherKind, dir: string, files: number, plan: WatcherPlan): Promise<WatcherRow> {
  const child = spawn(process.execPath, [PROBE, kind, dir, String(plan.pollIntervalMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => JSON.parse(((await lines.next()).value as string | undefined) ?? 'null') as Record<string, unknown>;
  const { ready } = (await next()) as { ready: number };
  await pause(1000); // past start-up
  const ticks = await cpuTicks(child.pid!);
  const idleStarted = performance.now();
  let rss = 0;
  for (let s = 0; s < plan.idleSeconds; s++) {
    await pause(1000);
    rss = Math.max(rss, await rssOf(child.pid!));
  }
  const cpu = ((await cpuTicks(child.pid!)) - ticks) / CLOCK_TICKS / ((performance.now() - idleStarted) / 1000);

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
