// SIGTERM while the bot never stops writing: the wait for a quiet directory must leave time for the
// final backup, or the sidecar spends its whole --shutdown-timeout waiting and stores nothing. The cap
// itself (half of --shutdown-timeout) is checked on a manual clock in integration/sidecar-loop; here,
// the process says at start that it will apply it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { startService, waitFor } from '../../harness/sidecar.js';

describe('sidecar stopped while the bot keeps writing', () => {
  it('says at start when --shutdown-quiet will be capped at half of --shutdown-timeout', async () => {
    const url = await freshDatabase('quietcap');
    const dir = await tempDir('quietcap');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(['sidecar', '--dir', dir, '--shutdown-quiet', '4000', '--shutdown-timeout', '6000'], cliEnv(url));
    try {
      const line = await waitFor(
        () => service.output.find((entry) => entry.includes('--shutdown-quiet is more than half')) ?? null,
        20_000,
        () => service.output.join('\n'),
      );
      assert.match(line, /at most 3000 ms/);
      // Stopped after its first backup: the capped quiet wait takes 3 of the 6 s, and a start still
      // under way on a loaded machine would have to fit into the other 3 s.
      await waitFor(
        async () => ((await service.metric('baileys_keeper_generation')) >= 1 ? true : null),
        20_000,
        () => 'no first backup',
      );
    } finally {
      const ended = await service.stop();
      assert.equal(ended.code, 0, service.output.slice(-8).join('\n'));
    }
    assert.equal(service.output.filter((entry) => entry.includes('--shutdown-quiet is more than half')).length, 1, 'said once');
  });
});
