// Anyone who can reach the port (health and metrics are open) cannot take the descriptors the keeper
// needs: under a low `ulimit -n`, an idle-connection flood leaves backups and /healthz working.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

/** A descriptor limit low enough that a few hundred connections would exhaust it. */
const OPEN_FILES = 120;
/** Connections the flood keeps open (re-opened as the keeper closes them, until it stops). */
const FLOOD = 400;

describe('connection flood under a low descriptor limit', async () => {
  const url = await freshDatabase('connections');
  const dir = await tempDir('flooded');
  await writeSession(dir, { preKeys: 2 });
  const service = await startService(
    ['sidecar', '--dir', dir, '--session', 'flooded', '--interval', '600000', '--debounce', '100', '--max-delay', '300'],
    cliEnv(url),
    { wrapper: ['bash', '-c', `ulimit -n ${OPEN_FILES} && exec "$@"`, 'bash'] },
  );
  await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);

  it('keeps storing the directory while hundreds of connections churn, and answers /healthz while they are held idle', async () => {
    const limits = await import('node:fs/promises').then((fs) => fs.readFile(`/proc/${service.child.pid}/limits`, 'utf8'));
    assert.match(limits, new RegExp(`Max open files\\s+${OPEN_FILES}\\s`), 'the keeper runs under the low limit');

    let flooding = true;
    const sockets = new Set<net.Socket>();
    const open = (): void => {
      if (!flooding) return;
      const socket = net.connect({ host: '127.0.0.1', port: service.port });
      sockets.add(socket);
      socket.on('error', () => undefined);
      // The flood keeps its size: a connection the keeper closes is opened again (after a breath).
      socket.on('close', () => {
        sockets.delete(socket);
        setTimeout(open, 20);
      });
    };
    for (let i = 0; i < FLOOD; i++) open();
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await writeSession(dir, { preKeys: 6, sessions: 3, senderKeys: 2 }); // the bot writes while the port is flooded
      const expected = await readTree(dir);
      await waitFor(
        async () => (diffTrees(await storedHead(url, 'flooded'), expected).length === 0 ? true : null),
        8_000,
        () => `the files written during the flood were not stored:\n${service.output.slice(-15).join('\n')}`,
      );
      // The flood stops re-opening but holds what it has: idle connections give way to a probe.
      flooding = false;
      assert.ok(sockets.size > 0);
      for (let i = 0; i < 5; i++) {
        const health = await service.get('/healthz');
        assert.equal(health.status, 200, health.text);
      }
      assert.equal(await service.metric('baileys_keeper_backup_lag_seconds'), 0);
      // Not one backup failed, and no descriptor ran out, at any moment of the flood.
      assert.equal(await service.metric('baileys_keeper_backups_total{result="failure"}'), 0);
      assert.deepEqual(
        service.output.filter((line) => /EMFILE|too many open files/i.test(line)),
        [],
        'the keeper ran out of descriptors',
      );
    } finally {
      flooding = false;
      for (const socket of sockets) socket.destroy();
    }
  });

  it('stops cleanly', async () => {
    assert.equal((await service.stop()).code, 0);
  });
});
