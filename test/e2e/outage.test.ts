// PostgreSQL stopped for 10 s during churn: the sidecar keeps running, keeps its dirty set, and catches up.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { startEmbedded, type EmbeddedServer } from '../../src/embedded-postgres.js';
import { sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { testLog } from '../support/log.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

describe('database outage', async () => {
  // A private server this test may stop and start; it comes back on the same port.
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bk-outage-pg-'));
  await chmod(dataDir, 0o755);
  let server: EmbeddedServer = await startEmbedded(dataDir, testLog);
  const port = server.port;
  after(async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('survives PostgreSQL being down for 10 s during churn and ends with the head equal to the dir', async () => {
    const dir = await tempDir('outage');
    const auth = await writeSession(dir, { preKeys: 20 });
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'outage', '--debounce', '200', '--max-delay', '1000'],
      cliEnv(server.url),
    );
    let churning = true;
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        await auth.state.keys.set({ session: { [`5511${i % 40}.0`]: sessionRecord() }, 'pre-key': { [String(i + 1)]: null } } as never);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await waitFor(async () => ((await service.metric('baileys_keeper_generation')) >= 2 ? true : null), 10_000);
      await server.stop();
      const down = Date.now();
      while (Date.now() - down < 10_000) {
        assert.equal((await service.get('/healthz')).status, 200, 'alive through the outage');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      assert.ok((await service.metric('baileys_keeper_database_errors_total')) > 0, 'the outage was counted');
      assert.ok((await service.metric('baileys_keeper_backup_lag_seconds')) >= 5, 'unsaved changes are reported as lag');
      server = await startEmbedded(dataDir, testLog, { port });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      churning = false;
      await churn;
      await waitFor(
        async () => (diffTrees(await storedHead(server.url, 'outage'), await readTree(dir)).length === 0 ? true : null),
        45_000,
        () => 'the store did not catch up with the directory',
      );
      assert.equal(await service.metric('baileys_keeper_lease_held'), 1);
    } finally {
      churning = false;
      await churn;
      const ended = await service.stop();
      assert.equal(ended.code, 0, service.output.slice(-20).join('\n'));
    }
  });
});
