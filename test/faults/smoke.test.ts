// A few runs of the fault suite inside `npm test`, so a change that breaks the suite (or an
// invariant) shows up before CI's full `npm run test:faults`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { collect, withoutTestVariables } from '../../harness/cli.js';
import { adminUrl } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { REPO } from '../../harness/paths.js';

describe('fault suite smoke', () => {
  it('three runs (a connection cut mid-transaction, a sidecar SIGKILLed, a restore SIGKILLed) hold every invariant', async () => {
    const results = path.join(await tempDir('faults-smoke'), 'results.md');
    const args = ['--runs', '3', '--concurrency', '1', '--seed', '20261129', '--results', results];
    for (const scenario of ['drop-connection', 'kill-sidecar', 'restore-kill']) args.push('--scenario', scenario);
    const child = spawn(process.execPath, [path.join(REPO, 'build', 'test', 'faults', 'run.js'), ...args], {
      env: { ...withoutTestVariables(process.env), DATABASE_URL: adminUrl() },
    });
    const { code, stdout, stderr } = await collect(child, { timeoutMs: 300_000 });
    const output = stdout + stderr;
    assert.equal(code, 0, output);
    assert.match(output, /^fault suite: seed 20261129/m);
    assert.match(output, /all 3 runs held every invariant/);
  });
});
