// The sidecar as a real process: the final flush on SIGTERM, the guard, a directory that appears late or
// is replaced, a second signal, and the HTTP endpoints. The rules about time (debounce, max-delay,
// pairing backed up at once, the lag gauge) are checked on a manual clock in integration/sidecar-loop.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { openAuth, sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';
import { assertNodeProcessMetrics } from '../support/metrics.js';

const SPEC_METRICS = [
  'baileys_keeper_backups_total{result="success"}',
  'baileys_keeper_backups_total{result="noop"}',
  'baileys_keeper_backups_total{result="failure"}',
  'baileys_keeper_backups_total{result="refused"}',
  'baileys_keeper_backup_duration_seconds_count',
  'baileys_keeper_last_backup_success_timestamp_seconds',
  'baileys_keeper_backup_lag_seconds',
  'baileys_keeper_generation',
  'baileys_keeper_files',
  'baileys_keeper_bytes',
  'baileys_keeper_torn_reads_total',
  'baileys_keeper_restores_total{result="restored"}',
  'baileys_keeper_restores_total{result="skipped"}',
  'baileys_keeper_restores_total{result="empty"}',
  'baileys_keeper_restores_total{result="failure"}',
  'baileys_keeper_lease_held',
  'baileys_keeper_session_registered',
  'baileys_keeper_database_errors_total',
  'baileys_keeper_build_info{version="0.1.0"}',
];

describe('sidecar', async () => {
  const url = await freshDatabase('sidecar');
  const env = cliEnv(url);

  /** Generations of a session, oldest first. */
  const generations = async (session: string) =>
    (
      await query<{ generation: string; reason: string }>(
        url,
        'SELECT generation, reason FROM baileys_keeper.generations WHERE session_id = $1 ORDER BY generation',
        [session],
      )
    ).map((row) => ({
      generation: Number(row.generation),
      reason: row.reason,
    }));

  it('serves every SPEC metric from the start, health and readiness, and clear 404/405s', async () => {
    const dir = await tempDir('metrics');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(['sidecar', '--dir', dir, '--session', 'metrics'], env);
    try {
      const metrics = await service.metrics();
      for (const name of SPEC_METRICS) assert.ok(metrics.has(name), `missing ${name}`);
      assert.equal(metrics.get('baileys_keeper_build_info{version="0.1.0"}'), 1);
      assertNodeProcessMetrics(metrics);
      assert.equal((await service.get('/healthz')).status, 200);
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
      assert.equal(await service.metric('baileys_keeper_lease_held'), 1);
      const missing = await service.get('/nope');
      assert.equal(missing.status, 404);
      assert.match(JSON.parse(missing.text).error, /no such endpoint/);
      const wrong = await fetch(`http://127.0.0.1:${service.port}/metrics`, { method: 'POST' });
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers.get('allow'), 'GET');
    } finally {
      assert.equal((await service.stop()).code, 0);
    }
  });

  it('stores a burst written right before SIGTERM (the final flush)', async () => {
    const dir = await tempDir('burst');
    const auth = await writeSession(dir, { preKeys: 10 });
    // A long debounce: only the shutdown path can store the burst.
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'burst', '--debounce', '20000', '--max-delay', '60000', '--shutdown-quiet', '300'],
      env,
    );
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
    const burst: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) burst[`5511700000${i}.0`] = sessionRecord();
    await auth.state.keys.set({ session: burst, 'pre-key': { '1': null, '2': null } } as never);
    const ended = await service.stop('SIGTERM');
    assert.equal(ended.code, 0, service.output.join('\n'));
    assert.deepEqual(diffTrees(await storedHead(url, 'burst'), await readTree(dir)), []);
    assert.equal((await generations('burst')).at(-1)?.reason, 'shutdown');
  });

  it('refuses to overwrite a registered session with an unpaired directory, counts it, and --allow-replace overrides', async () => {
    const stored = await tempDir('guard-stored');
    await writeSession(stored, { preKeys: 3 });
    assert.equal((await runCli(['backup', '--dir', stored, '--session', 'guard'], { env })).code, 0);
    const fresh = await tempDir('guard-fresh');
    await writeSession(fresh, { preKeys: 3, registered: false }); // a bot that lost its directory
    const service = await startService(['sidecar', '--dir', fresh, '--session', 'guard', '--debounce', '100'], env);
    try {
      await waitFor(async () => ((await service.metric('baileys_keeper_backups_total{result="refused"}')) >= 1 ? true : null), 10_000);
      assert.deepEqual(await storedHead(url, 'guard'), await readTree(stored), 'the stored login is untouched');
      assert.ok(service.output.some((line) => /backup refused: the stored session is registered/.test(line)));
      // The directory is not what is stored: never green. The lag grows, and past --max-delay plus one
      // backup the session is reported unprotected (lagging).
      const lag = await service.metric('baileys_keeper_backup_lag_seconds');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok((await service.metric('baileys_keeper_backup_lag_seconds')) > lag, 'the lag grows while the guard refuses');
      await waitFor(async () => ((await service.metric('baileys_keeper_protected')) === 0 ? true : null), 15_000);
    } finally {
      assert.equal((await service.stop()).code, 0);
    }
    const replacing = await startService(['sidecar', '--dir', fresh, '--session', 'guard', '--allow-replace'], env);
    try {
      await waitFor(async () => ((await replacing.metric('baileys_keeper_backups_total{result="success"}')) >= 1 ? true : null), 10_000);
      assert.deepEqual(diffTrees(await storedHead(url, 'guard'), await readTree(fresh)), []);
    } finally {
      await replacing.stop();
    }
  });

  it('waits for a directory that does not exist yet, then backs it up', async () => {
    const parent = await tempDir('late');
    const dir = `${parent}/auth_info`;
    const service = await startService(['sidecar', '--dir', dir, '--session', 'late', '--debounce', '100'], env);
    try {
      await waitFor(() => (service.output.some((line) => /waiting for the auth directory/.test(line)) ? true : null), 5000);
      await writeSession(dir, { preKeys: 2 });
      await waitFor(async () => {
        const head = await storedHead(url, 'late');
        return diffTrees(head, await readTree(dir)).length === 0 && head.size > 0 ? true : null;
      }, 10_000);
    } finally {
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('follows a directory that is deleted and recreated (a bot that logged out and paired again)', async () => {
    const dir = await tempDir('replaced');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'replaced', '--debounce', '100', '--interval', '500', '--allow-replace'],
      env,
    );
    try {
      await waitFor(async () => ((await service.metric('baileys_keeper_generation')) >= 1 ? true : null), 10_000);
      await rm(dir, { recursive: true });
      await writeSession(dir, { preKeys: 4 }); // a new directory (new inode) with a new login
      const auth = await openAuth(dir);
      await waitFor(async () => (diffTrees(await storedHead(url, 'replaced'), await readTree(dir)).length === 0 ? true : null), 15_000);
      // …and its later changes arrive through the new watch, not only through rescans.
      await auth.state.keys.set({ session: { '5511333000001.0': sessionRecord() } } as never);
      await waitFor(async () => ((await storedHead(url, 'replaced')).has('session-5511333000001.0.json') ? true : null), 10_000);
    } finally {
      await service.stop();
    }
  });

  it('aborts at once on a second signal', async () => {
    const dir = await tempDir('abort');
    await writeSession(dir, { preKeys: 1 });
    // A quiet period far longer than the test: a graceful stop would end later, with exit 0.
    const timings = ['--shutdown-quiet', '600000', '--shutdown-timeout', '1200000'];
    const service = await startService(['sidecar', '--dir', dir, '--session', 'abort', ...timings], env);
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
    service.child.kill('SIGTERM');
    await waitFor(() => (service.output.some((line) => /stopping: waiting for the bot to go quiet/.test(line)) ? true : null), 5000);
    service.child.kill('SIGTERM');
    const ended = await service.exited;
    assert.equal(ended.code, 143, 'ended by the second signal, without waiting for the quiet period');
  });
});
