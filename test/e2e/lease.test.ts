// One writer per session: two sidecars, a SIGKILLed holder, and the zero-loss restore hand-over.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv, collect, startCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

describe('single-writer lease', async () => {
  const url = await freshDatabase('lease');
  const env = cliEnv(url);

  it('lets exactly one of two sidecars write, and the other takes over after the holder is SIGKILLed', async () => {
    const dir = await tempDir('two');
    const auth = await writeSession(dir, { preKeys: 5 });
    const args = ['sidecar', '--dir', dir, '--session', 'two', '--debounce', '100', '--max-delay', '500', '--lease-ttl', '1500'];
    const first = await startService(args, env);
    await waitFor(async () => ((await first.metric('baileys_keeper_lease_held')) === 1 ? true : null), 10_000);
    const second = await startService(args, env);
    try {
      await waitFor(
        () => (second.output.some((line) => /standing by: another process holds the session lease/.test(line)) ? true : null),
        10_000,
      );
      for (let i = 0; i < 10; i++) {
        await auth.state.keys.set({ session: { [`5511600000${i}.0`]: sessionRecord() } } as never);
        const [a, b] = await Promise.all([first.metric('baileys_keeper_lease_held'), second.metric('baileys_keeper_lease_held')]);
        assert.equal(a + b, 1, 'exactly one holder at any moment');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await waitFor(async () => ((await first.metric('baileys_keeper_backup_lag_seconds')) === 0 ? true : null), 5000);
      assert.equal(await second.metric('baileys_keeper_backups_total{result="success"}'), 0, 'the standby never wrote');
      assert.deepEqual(diffTrees(await storedHead(url, 'two'), await readTree(dir)), []);

      // How soon (the TTL, then the standby's next attempt) is checked on a manual clock in integration/sidecar-loop.
      await first.stop('SIGKILL');
      const tookOver = async () => ((await second.metric('baileys_keeper_lease_held')) === 1 ? true : null);
      await waitFor(tookOver, 10_000, () => 'the standby never took over');
      await auth.state.keys.set({ session: { '5511600000099.0': sessionRecord() }, 'pre-key': { '1': null } } as never);
      await waitFor(async () => (diffTrees(await storedHead(url, 'two'), await readTree(dir)).length === 0 ? true : null), 10_000);
    } finally {
      await second.stop();
      await first.stop('SIGKILL');
    }
  });

  it("hands over on deploy: a new restore waits for the old sidecar's final backup, then restores it", async () => {
    const oldDir = await tempDir('old-pod');
    const auth = await writeSession(oldDir, { preKeys: 5 });
    const old = await startService(
      ['sidecar', '--dir', oldDir, '--session', 'handover', '--debounce', '20000', '--max-delay', '60000', '--shutdown-quiet', '200'],
      env,
    );
    await waitFor(async () => ((await old.metric('baileys_keeper_generation')) >= 1 ? true : null), 10_000);

    // The new pod's init container starts while the old pod still runs.
    const newDir = path.join(await tempDir('new-pod'), 'auth_info');
    const restore = startCli(['restore', '--dir', newDir, '--session', 'handover', '--lease-wait', '30'], { env });
    const restored = collect(restore);
    let restoreOut = '';
    restore.stdout!.on('data', (chunk: Buffer) => (restoreOut += chunk.toString()));
    await waitFor(() => (/waiting for its final backup/.test(restoreOut) ? true : null), 10_000);

    // The old bot's last writes: not stored yet (long debounce), only the final flush can save them.
    await auth.state.keys.set({
      session: { '5511900000001.0': sessionRecord(), '5511900000002.0': sessionRecord() },
      'pre-key': { '3': null },
    } as never);
    const oldEnded = await old.stop('SIGTERM');
    assert.equal(oldEnded.code, 0);
    const result = await restored;
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /the other instance released the session/);
    assert.deepEqual(diffTrees(await readTree(newDir), await readTree(oldDir)), [], 'the new pod starts with everything the old one wrote');
  });
});
