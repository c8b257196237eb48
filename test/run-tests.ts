// `npm test`: starts one real PostgreSQL for the run (the embedded one, unless DATABASE_URL points at
// a server), then runs every test file with node's test runner. Each file makes its own database.
// `--charts` (npm run test:charts) runs the deployment tests under test/charts/ instead, which need
// helm and kustomize; the other arguments filter file names.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { startEmbedded, type EmbeddedServer } from '../src/embedded-postgres.js';
import { createLogger } from '../src/log.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// The keeper's own logger: one readable line on a terminal, JSON in CI's log.
const log = createLogger(process.env['TEST_LOG'] ?? 'warn', 'stderr');

// Ctrl-C or a SIGTERM ends the tests, and then the server is stopped and its directory removed: the
// server runs detached (src/embedded-postgres.ts) and would outlive this process otherwise.
let interrupted: NodeJS.Signals | null = null;
let child: ChildProcess | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted ??= signal;
    child?.kill(signal);
  });
}

const charts = process.argv[2] === '--charts';
const filters = process.argv.slice(charts ? 3 : 2);
const CHART_TESTS = path.join(here, 'charts') + path.sep;

async function testFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.test.js'))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => file.startsWith(CHART_TESTS) === charts)
    .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
    .sort();
}

let server: EmbeddedServer | null = null;
let dataDir: string | null = null;
let url = process.env['DATABASE_URL'];
if (!url) {
  // Under os.tmpdir() and world-traversable: as root the server runs as `postgres` and must reach it.
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'bk-test-pg-'));
  await chmod(dataDir, 0o755);
  server = await startEmbedded(dataDir, log);
  url = server.url;
}

const files = await testFiles(here);
if (files.length === 0) throw new Error(`no test file matches ${filters.join(' ')}`);
const concurrency = process.env['TEST_CONCURRENCY'] ?? '3';
const runner = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TEST_DATABASE_URL: url },
});
child = runner;
// Interrupted before the runner started (while the server was starting): end it at once.
if (interrupted) runner.kill(interrupted);
const code = await new Promise<number>((resolve) => runner.once('close', (status, signal) => resolve(status ?? (signal ? 1 : 0))));
await server?.stop();
if (dataDir) await rm(dataDir, { recursive: true, force: true });
process.exitCode = interrupted ? 128 + os.constants.signals[interrupted] : code;
