// The single-file CLI (dist/baileys-keeper.mjs, `npm run bundle`) is what users copy into their own
// images: it must work from a directory with no node_modules anywhere above it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { loadEverything, writeSession } from '../../harness/baileys.js';
import { cliEnv, collect, type CliResult } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { REPO } from '../../harness/paths.js';
import { startService } from '../../harness/sidecar.js';

const url = await freshDatabase('bundle');
const alone = await tempDir('bundle-alone');
const bundle = path.join(alone, 'baileys-keeper.mjs');
await copyFile(path.join(REPO, 'dist/baileys-keeper.mjs'), bundle);

function runBundle(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  return collect(spawn(process.execPath, [bundle, ...args], { cwd: alone, env, stdio: ['pipe', 'pipe', 'pipe'] }));
}

test('the bundle backs up and restores with nothing installed next to it', async () => {
  const version = (JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal((await runBundle(['--version'], cliEnv(url))).stdout.trim(), version);

  const source = await tempDir('bundle-source');
  await writeSession(source);
  const backup = await runBundle(['backup', '--dir', source, '--session', 'bundled'], cliEnv(url));
  assert.equal(backup.code, 0, backup.stderr);
  const target = path.join(await tempDir('bundle-target'), 'auth_info');
  const restore = await runBundle(['restore', '--dir', target, '--session', 'bundled'], cliEnv(url));
  assert.equal(restore.code, 0, restore.stdout + restore.stderr);
  assert.deepEqual(await loadEverything(target), await loadEverything(source));
});

test('without DATABASE_URL the bundle (which has no embedded PostgreSQL) says what to set, exit 2', async () => {
  const env = cliEnv(url);
  delete env['DATABASE_URL'];
  const result = await runBundle(['status', '--data-dir', path.join(alone, 'pg')], env);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /no database URL was given and the embedded PostgreSQL .* is not available: set DATABASE_URL/);
});

test('the bundle carries the status page: its sidecar serves GET / with the page, its script and its CSP', async () => {
  const dir = await tempDir('bundle-page');
  await writeSession(dir, { preKeys: 1 });
  const service = await startService(['sidecar', '--dir', dir, '--session', 'bundled-page', '--shutdown-quiet', '0'], cliEnv(url), {
    script: bundle,
    cwd: alone,
  });
  try {
    const response = await fetch(`http://127.0.0.1:${service.port}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-security-policy') ?? '', /script-src 'sha256-/);
    const page = await response.text();
    assert.match(page, /<title>baileys-keeper<\/title>/);
    assert.match(page, /api\/overview/, 'the script is inline');
    assert.equal((await service.get('/api/overview')).status, 200);
  } finally {
    await service.stop();
  }
});
