// `npm test`: starts one real PostgreSQL for the run (the embedded one, unless DATABASE_URL points at
// a server), then runs every test file with node's test runner. Each file makes its own database.
// `--charts` (npm run test:charts) runs the deployment tests under test/charts/ instead, which need
// helm and kustomize; the other arguments filter file names.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startEmbedded, type EmbeddedServer } from '../src/embedded-postgres.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const log = pino({ level: process.env['TEST_LOG'] ?? 'warn' });

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
const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TEST_DATABASE_URL: url },
});
const code = await new Promise<number>((resolve) => child.once('close', (status, signal) => resolve(status ?? (signal ? 1 : 0))));
await server?.stop();
if (dataDir) await rm(dataDir, { recursive: true, force: true });
process.exitCode = code;
