// A fleet's watchers measured on their own (docs/performance.md, "One watcher for a fleet?"): N session
// directories, each a copy of one session written by the real Baileys writer, watched (a) with one
// chokidar instance per directory, as `sidecar --sessions-dir` does, and (b) with one chokidar instance
// that `.add()`s every directory; beside a Node process that watches nothing.
// Usage: node build/bench/fleet-watch.js [--sessions 1000] [--pre-keys 62] [--idle-seconds 15]
//        [--backend native|polling] [--out results.json]
// Polling 1,000 directories takes minutes to start and more than a core at rest: run it only on purpose.
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeSession } from '../harness/baileys.js';
import { DEFAULT_POLL_INTERVAL_MS } from '../src/config.js';
import { formatBytes } from './charts.js';
import { FLEET_WATCH_KINDS, type FleetWatchRow, measureFleetWatch } from './watchers.js';

const { values: flags } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    'pre-keys': { type: 'string', default: '62' },
    'idle-seconds': { type: 'string', default: '15' },
    backend: { type: 'string', default: 'native' },
    out: { type: 'string' },
  },
});
const backend = flags.backend === 'polling' ? 'polling' : 'native';
const work = await mkdtemp(path.join(os.tmpdir(), 'keeper-fleet-watch-'));
try {
  const seed = path.join(work, 'seed');
  await writeSession(seed, { preKeys: Number(flags['pre-keys']) });
  const files = (await readdir(seed)).length;
  const sessionsDir = path.join(work, 'sessions');
  await mkdir(sessionsDir);
  const sessions = Array.from({ length: Number(flags.sessions) }, (_, i) => `s${String(i).padStart(5, '0')}`);
  for (const name of sessions) await cp(seed, path.join(sessionsDir, name), { recursive: true });

  const rows: FleetWatchRow[] = [];
  for (const kind of FLEET_WATCH_KINDS) {
    const row = await measureFleetWatch(kind, backend, sessionsDir, sessions, files, {
      idleSeconds: Number(flags['idle-seconds']),
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
    });
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  const md = [
    `${sessions.length} session directories of ${files} files, ${backend}:`,
    '',
    '| watchers | ready | CPU to start | RSS idle (peak) | RSS after gc | heap used after gc | CPU at rest | inotify instances / watches | write routed |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.kind} | ${(r.readyMs / 1000).toFixed(2)} s | ${r.startCpuSeconds.toFixed(2)} s | ${formatBytes(r.idleRssBytes)} | ` +
        `${formatBytes(r.gcRssBytes)} | ${formatBytes(r.gcHeapUsedBytes)} | ${r.cpuPercentOfOneCore.toFixed(2)} % | ` +
        `${r.inotifyInstances} / ${r.inotifyWatches} | ${r.kind === 'none' ? '—' : r.routed ? 'yes' : 'NO'} |`,
    ),
  ];
  process.stdout.write(`${md.join('\n')}\n`);
  if (flags.out) await writeFile(flags.out, `${JSON.stringify({ node: process.version, rows }, null, 2)}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
