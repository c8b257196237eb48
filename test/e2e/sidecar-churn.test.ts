// A live bot (the real Baileys useMultiFileAuthState and signal repository, in its own process) churns
// keys while the sidecar runs: when the bot stops and the sidecar settles, the stored head equals the
// directory file for file, and a restore of it is what Baileys loads from the directory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ChurnBot } from '../../harness/churn.js';
import { loadEverything } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { CHURN_BOT } from '../../harness/paths.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

describe('sidecar under a live bot', async () => {
  const url = await freshDatabase('churn');
  const env = cliEnv(url);

  it('stores everything a churning Baileys bot writes, exactly', async () => {
    const dir = await tempDir('live');
    // Pair and seed the directory first, as a running bot has.
    await (await ChurnBot.open(dir, { seed: 7 })).close();
    const service = await startService(['sidecar', '--dir', dir, '--session', 'live', '--shutdown-quiet', '200'], env);
    try {
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
      const bot = spawn(process.execPath, [CHURN_BOT, dir, '--rate', '25', '--seed', '11'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      bot.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await waitFor(() => (out.includes('ready') ? true : null), 20_000);
      // Churn, with the default debounce and max-delay, for 8 s and until five generations were stored
      // meanwhile: on a loaded machine the bot is slower, so it is given more time rather than fewer steps.
      await new Promise((resolve) => setTimeout(resolve, 8000));
      await waitFor(async () => ((await service.metric('baileys_keeper_backups_total{result="success"}')) >= 5 ? true : null), 60_000);
      bot.kill('SIGTERM');
      await new Promise((resolve) => bot.once('exit', resolve));
      assert.match(out, /stopped (\d+)/);
      const steps = Number(/stopped (\d+)/.exec(out)![1]);
      assert.ok(steps > 20, `the bot churned (${steps} steps)`);

      await waitFor(async () => ((await service.metric('baileys_keeper_backup_lag_seconds')) === 0 ? true : null), 15_000);
      const problems = diffTrees(await storedHead(url, 'live'), await readTree(dir));
      assert.deepEqual(problems, [], 'head equals the directory');
      const kinds = new Set([...(await readTree(dir)).keys()].map((name) => name.replace(/-.*$/, '')));
      for (const kind of ['creds.json', 'pre', 'session', 'sender']) assert.ok(kinds.has(kind), `the bot wrote ${kind} files`);
      const [{ n }] = (await query<{ n: string }>(
        url,
        "SELECT count(*) AS n FROM baileys_keeper.generations WHERE session_id = 'live' AND files_deleted > 0",
      )) as [{ n: string }];
      assert.ok(Number(n) > 0, 'used pre-keys were recorded as deleted');
      assert.ok(
        (await service.metric('baileys_keeper_backups_total{result="success"}')) >= 2,
        'backed up during the churn, not only at the end',
      );

      const restored = path.join(await tempDir('restored'), 'auth_info');
      // A copy while the sidecar still holds the lease: no hand-over to wait for.
      assert.equal((await runCli(['restore', '--dir', restored, '--session', 'live', '--lease-wait', '0'], { env })).code, 0);
      const expected = await loadEverything(dir);
      const actual = await loadEverything(restored);
      assert.deepEqual(actual.creds, expected.creds);
      assert.deepEqual(actual.keys, expected.keys);
    } finally {
      assert.equal((await service.stop()).code, 0);
    }
  });

  it('stores a burst of concurrent key writes made right before SIGTERM', async () => {
    const dir = await tempDir('burst');
    const bot = await ChurnBot.open(dir, { seed: 3 });
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'burst', '--debounce', '30000', '--max-delay', '60000', '--shutdown-quiet', '500'],
      env,
    );
    await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
    await bot.burst(60);
    await bot.close();
    const ended = await service.stop('SIGTERM');
    assert.equal(ended.code, 0);
    assert.deepEqual(diffTrees(await storedHead(url, 'burst'), await readTree(dir)), []);
  });
});
