// The wall clock stepped back by minutes (NTP, a resumed VM) must not postpone backups: the sidecar
// times its retries and deadlines on a monotonic clock. Only the sidecar's wall clock is stepped,
// with libfaketime; the database's clock (which times the lease) is untouched.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { tcpProxy } from '../../harness/proxy.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find(
  (file) => existsSync(file),
);

describe('a sidecar whose wall clock steps back', {
  skip: LIBFAKETIME ? false : 'needs libfaketime (apt-get install faketime)',
}, async () => {
  it('retries a failed backup at once, not 10 minutes later', async () => {
    const url = await freshDatabase('clockstep');
    const dir = await tempDir('clockstep');
    const clockFile = path.join(await tempDir('clockstep-time'), 'faketime');
    writeFileSync(clockFile, '+0\n');
    // The next COMMIT is cut (a failed backup, retried after 250 ms) and the clock steps back 10 minutes at that instant.
    let failNextCommit = false;
    const proxy = await tcpProxy(url, (chunk) => {
      if (!failNextCommit || !chunk.toString('latin1').includes('COMMIT\0')) return 'pass';
      failNextCommit = false;
      writeFileSync(clockFile, '-600s\n');
      return 'cut-before';
    });
    after(() => proxy.close());
    const auth = await writeSession(dir, { preKeys: 5 });
    const service = await startService(['sidecar', '--dir', dir, '--debounce', '100', '--max-delay', '500'], {
      ...cliEnv(proxy.url),
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    try {
      await waitFor(
        async () => ((await service.metric('baileys_keeper_generation')) >= 1 ? true : null),
        20_000,
        () => 'no first backup',
      );
      failNextCommit = true;
      await auth.state.keys.set({ session: { '5511000000001.0': sessionRecord() } } as never);
      await waitFor(
        () => (failNextCommit ? null : true),
        10_000,
        () => 'the backup never reached COMMIT',
      );
      await waitFor(
        async () => (diffTrees(await storedHead(url, 'default'), await readTree(dir)).length === 0 ? true : null),
        15_000,
        () => 'the failed backup was not retried within 15 s of a 10-minute step back: retries followed the wall clock',
      );
      assert.ok((await service.metric('baileys_keeper_database_errors_total')) > 0, 'the cut failed a backup');
    } finally {
      const ended = await service.stop();
      assert.equal(ended.code, 0, service.output.slice(-10).join('\n'));
    }
  });
});
