// One watcher in a process of its own, so that the bench can read its RSS and CPU from /proc.
// Usage: node watch-probe.js <none|fs-watch|chokidar-native|chokidar-polling> <dir> <poll-interval-ms>
// (`none` watches nothing: the baseline a process costs.) Prints {"ready": ms} once watching, then on
// a line "report" on stdin prints {"events": n, "names": {name: [Date.now() of each event]}} and exits.
import { watch as fsWatch } from 'node:fs';
import readline from 'node:readline';
import { DirectoryWatcher } from '../src/watcher.js';

const [kind, dir, pollMs] = process.argv.slice(2) as [string, string, string];
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

if (kind === 'none') {
  // the baseline
} else if (kind === 'fs-watch') {
  fsWatch(dir, (_event, filename) => filename && seen(filename));
} else {
  // The keeper's own watcher of an auth directory: chokidar with the keeper's options (watch/chokidar.ts).
  const mode = kind === 'chokidar-polling' ? 'poll' : 'native';
  const quiet = () => undefined;
  await new DirectoryWatcher(
    dir,
    { mode, pollIntervalMs: Number(pollMs) },
    { changed: seen, watching: quiet, lost: quiet, fellBack: quiet, error: quiet },
  ).start();
}
process.stdout.write(`${JSON.stringify({ ready: performance.now() - started })}\n`);

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line === 'report') {
    process.stdout.write(`${JSON.stringify({ events, names: Object.fromEntries(names) })}\n`);
    process.exit(0);
  }
}
