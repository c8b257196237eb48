// SIGTERM while the bot never stops writing: the wait for a quiet directory must leave time for the
// final backup, or the sidecar spends its whole --shutdown-timeout waiting and stores nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { startService, storedHead, waitFor } from '../../harness/sidecar.js';

describe('sidecar stopped while the bot keeps writing', () => {
  it('still makes its final backup within --shutdown-timeout and exits 0', async () => {
    const url = await freshDatabase('busystop');
    const dir = await tempDir('busystop');
    const auth = await writeSession(dir, { preKeys: 5 });
    const service = await startService(['sidecar', '--dir', dir, '--shutdown-quiet', '1000', '--shutdown-timeout', '6000'], cliEnv(url));
    let churning = true;
    let written = 0;
    const churn = (async () => {
      // A write every 100 ms for as long as the test runs: never a quiet second.
      while (churning) {
        await auth.state.keys.set({ session: { [`5511${written++ % 10}.0`]: sessionRecord() } } as never);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await waitFor(async () => ((await service.metric('baileys_keeper_generation')) >= 1 ? true : null), 20_000, () => 'no first backup');
      // A name written only now, after the last regular backup had every chance to run: the final backup must carry it.
      await auth.state.keys.set({ 'sender-key': { 'last-words': sessionRecord() } } as never);
      const ended = await service.stop();
      assert.equal(ended.code, 0, service.output.slice(-6).join('\n'));
      assert.ok((await storedHead(url, 'default')).has('sender-key-last-words.json'), 'the final backup stored the last change');
    } finally {
      churning = false;
      await churn;
    }
  });

  it('says at start when --shutdown-quiet will be capped at half of --shutdown-timeout', async () => {
    const url = await freshDatabase('quietcap');
    const dir = await tempDir('quietcap');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(['sidecar', '--dir', dir, '--shutdown-quiet', '4000', '--shutdown-timeout', '6000'], cliEnv(url));
    try {
      const line = await waitFor(() => service.output.find((entry) => entry.includes('--shutdown-quiet is more than half')) ?? null, 20_000, () => service.output.join('\n'));
      assert.match(line, /at most 3000 ms/);
      // Stopped after its first backup: the capped quiet wait takes 3 of the 6 s, and a start still
      // under way on a loaded machine would have to fit into the other 3 s.
      await waitFor(async () => ((await service.metric('baileys_keeper_generation')) >= 1 ? true : null), 20_000, () => 'no first backup');
    } finally {
      const ended = await service.stop();
      assert.equal(ended.code, 0, service.output.slice(-8).join('\n'));
    }
    assert.equal(service.output.filter((entry) => entry.includes('--shutdown-quiet is more than half')).length, 1, 'said once');
  });
});
