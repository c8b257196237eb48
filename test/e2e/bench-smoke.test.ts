// The benchmark harness keeps working: a short smoke run of every part (not a measurement).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { withoutTestVariables } from '../../harness/cli.js';
import { REPO } from '../../harness/paths.js';

describe('benchmark harness', () => {
  it('runs every part briefly and writes its results, table and charts', async () => {
    const out = await tempDir('bench');
    const child = spawn(process.execPath, [path.join(REPO, 'build', 'bench', 'run.js'), '--smoke', '--out', out], {
      env: { ...withoutTestVariables(process.env), DATABASE_URL: await freshDatabase('bench') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, output);
    const results = JSON.parse(await readFile(path.join(out, 'latest.json'), 'utf8'));
    assert.deepEqual(Object.keys(results).sort(), [
      'churn',
      'continuity',
      'debounceMs',
      'environment',
      'fleet',
      'idle',
      'maxDelayMs',
      'plan',
      'restore',
      'retention',
      'rpoQuantiles',
      'sizes',
      'targets',
      'thinning',
      'watchers',
    ]);
    assert.ok(
      results.churn.every((row: { unsaved: number }) => row.unsaved === 0),
      'every write under churn reached a commit',
    );
    assert.equal(results.targets.length, 9);
    assert.equal(results.continuity.length, 2, 'a crash measured with the default and a smaller --max-delay');
    assert.ok(
      results.continuity.every((row: { chats: number }) => row.chats > 0),
      'every crash was followed by a probe of the chats',
    );
    assert.match(await readFile(path.join(out, 'latest.md'), 'utf8'), /\| target \| measured \| met \|/);
    for (const chart of [
      'bytes-per-backup.svg',
      'rpo.svg',
      'many-sessions-rpo.svg',
      'many-sessions-fleet.svg',
      'many-sessions-files-table.svg',
    ])
      assert.match(await readFile(path.join(out, chart), 'utf8'), /^<svg /);
    // Many sessions (bench/fleet.ts): every write of every churned session reached a commit.
    const many = JSON.parse(await readFile(path.join(out, 'many-sessions.json'), 'utf8'));
    for (const window of [many.one, many.many, many.manyImage, ...many.fleet]) {
      assert.ok(window.writes > 0, 'the sessions were churned');
      assert.equal(window.unsaved, 0, 'every write reached a commit');
    }
    assert.ok(many.history.length >= 4, 'the files table was sampled during the churn');
    // The fleet at rest (bench/rest.ts): this build only, without --baseline; it stopped cleanly.
    assert.equal(many.rest.length, 1);
    assert.equal(many.rest[0].exitCode, 0);
    assert.ok(many.rest[0].restartReadyMs > 0 && many.rest[0].rssBytes > 0);
    const table = await readFile(path.join(out, 'many-sessions.md'), 'utf8');
    assert.match(table, /\| keeper of \| writes \|/);
    assert.match(table, /\| build \| first start to ready \| restart to ready \|/);
  });
});
