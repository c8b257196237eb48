// One watcher in a process of its own, so that the bench can read its RSS and CPU from /proc.
// Usage: node watch-probe.js <kind> <dir> <poll-interval-ms> [native|polling]
//   none | fs-watch | chokidar-native | chokidar-polling: one auth directory `dir` (`none` watches
//     nothing: the baseline a process costs);
//   fleet-per-session | fleet-shared: every sub-directory of the sessions directory `dir`, with one chokidar
//     instance each (as the fleet opened them before) or with one instance and `.add()` of each, by the
//     backend named last (native by default);
//   fleet-direct: every sub-directory with the keeper's own DirectoryWatcher, as the fleet opens them now
//     (natively: one fs.watch each, watch/native.ts).
// Prints {"ready": ms} once watching, then on a line "report" on stdin prints {"events": n, "names": {name:
// [Date.now() of each event]}, "rss": bytes, "heapUsed": bytes} (memory after a forced gc when node runs
// with --expose-gc) and exits.
import { watch as fsWatch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { watch as chokidarWatch } from 'chokidar';
import { forEachLimited } from '../src/limit.js';
import { invalidNameReason } from '../src/names.js';
import { chokidarOptions, type WatchBackend, watchDirectory } from '../src/watch/chokidar.js';
import { DirectoryWatcher } from '../src/watcher.js';

/** Directories watched at once while a fleet starts (the fleet's own START_CONCURRENCY). */
const FLEET_START_CONCURRENCY = 16;

const [kind, dir, pollMs, backendArg] = process.argv.slice(2) as [string, string, string, string | undefined];
const backend: WatchBackend = backendArg === 'polling' ? 'polling' : 'native';
const started = performance.now();
const names = new Map<string, number[]>();
let events = 0;
const seen = (name: string) => {
  events++;
  const at = Date.now(); // compared with the writer's Date.now() in another process
  const list = names.get(name);
  if (list) list.push(at);
  else names.set(name, [at]);
};
const notBackedUp = (name: string) => invalidNameReason(name) !== null;
const quiet = () => undefined;

if (kind === 'none') {
  // the baseline
} else if (kind === 'fs-watch') {
  fsWatch(dir, (_event, filename) => filename && seen(filename));
} else if (kind === 'fleet-direct') {
  const sessions = (await readdir(dir)).sort().map((name) => path.join(dir, name));
  await forEachLimited(sessions, FLEET_START_CONCURRENCY, async (session) => {
    const mode = backend === 'polling' ? 'poll' : 'native';
    await new DirectoryWatcher(
      session,
      { mode, pollIntervalMs: Number(pollMs) },
      { changed: (name) => seen(`${path.basename(session)}/${name}`), watching: quiet, lost: quiet, fellBack: quiet, error: quiet },
    ).start();
  });
} else if (kind === 'fleet-per-session') {
  // What the fleet did before: one chokidar instance per session directory.
  const sessions = (await readdir(dir)).sort().map((name) => path.join(dir, name));
  await forEachLimited(sessions, FLEET_START_CONCURRENCY, async (session) => {
    await watchDirectory(
      session,
      { backend, pollIntervalMs: Number(pollMs), ignore: notBackedUp },
      { entry: (name) => seen(`${path.basename(session)}/${name}`), removed: quiet, error: quiet },
    );
  });
} else if (kind === 'fleet-shared') {
  // The alternative: one chokidar instance, each session's directory added to it (depth 0 applies per added
  // path), events routed by their parent directory.
  const sessions = (await readdir(dir)).sort().map((name) => path.join(dir, name));
  const watched = new Set(sessions);
  const watcher = chokidarWatch([], {
    ...chokidarOptions(dir, { backend, pollIntervalMs: Number(pollMs) }),
    ignored: (entry: string) => watched.has(path.dirname(entry)) && notBackedUp(path.basename(entry)),
  });
  watcher.on('all', (_event, entry) => {
    if (watched.has(path.dirname(entry))) seen(`${path.basename(path.dirname(entry))}/${path.basename(entry)}`);
  });
  // The same bound on directories being set up at once as the fleet's: adding all of them in one call
  // peaked RSS at 400 MiB for 1,000. chokidar says when an add is done only through its first `ready`, so
  // its (public, typed) lifecycle's pending tasks are waited for instead.
  for (let i = 0; i < sessions.length; i += FLEET_START_CONCURRENCY) {
    watcher.add(sessions.slice(i, i + FLEET_START_CONCURRENCY));
    while (watcher.lifecycle.tasks.size > 0) await Promise.allSettled([...watcher.lifecycle.tasks]);
  }
} else {
  // chokidar with the keeper's options (watch/chokidar.ts): what polls an auth directory, and what watched
  // it natively before the keeper's own watcher moved to fs.watch (watch/native.ts).
  await watchDirectory(
    dir,
    { backend: kind === 'chokidar-polling' ? 'polling' : 'native', pollIntervalMs: Number(pollMs), ignore: notBackedUp },
    { entry: seen, removed: quiet, error: quiet },
  );
}
process.stdout.write(`${JSON.stringify({ ready: performance.now() - started })}\n`);

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line === 'report') {
    // Twice: the first collection may leave what finalizers free for the second.
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const { rss, heapUsed } = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ events, names: Object.fromEntries(names), rss, heapUsed })}\n`);
    process.exit(0);
  }
}
