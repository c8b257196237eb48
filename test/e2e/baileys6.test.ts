// Bots on Baileys 6.7 (the last 6.x line installable from the registry) keep the same directory layout
// through the same useMultiFileAuthState: their logins must round-trip as exactly as Baileys 7's, and a
// bot upgraded to 7 must come up on a login its 6.7 self left in the store.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BAILEYS_7, loadBaileys6, loadEverything, sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

const baileys6 = await loadBaileys6();

describe('Baileys 6.7 as the writer', async () => {
  const url = await freshDatabase('baileys6');
  const env = cliEnv(url);

  it('is the 6.7 line, not Baileys 7 under another name', async () => {
    const { createRequire } = await import('node:module');
    const version = (createRequire(import.meta.url)('baileys-6/package.json') as { version: string }).version;
    assert.match(version, /^6\.7\./);
  });

  it('restores creds and every key kind deep-equal as Baileys 6.7 reads them, deleted keys staying deleted', async () => {
    const bot = await tempDir('bot6');
    const auth = await writeSession(bot, { preKeys: 25, sessions: 6, senderKeys: 4, appStateKeys: 3 }, baileys6);
    assert.equal((await runCli(['backup', '--dir', bot, '--session', 'v6'], { env })).code, 0);
    await auth.state.keys.set({
      'pre-key': { '1': null, '2': null, '26': baileys6.Curve.generateKeyPair() },
      session: { '5511900000001.0': sessionRecord() },
    } as never);
    auth.state.creds.nextPreKeyId = 27;
    await auth.saveCreds();
    const second = await runCli(['backup', '--dir', bot, '--session', 'v6'], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /generation 2 .*2 deleted/);

    const restored = path.join(await tempDir('restored6'), 'auth_info');
    const restore = await runCli(['restore', '--dir', restored, '--session', 'v6'], { env });
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
    assert.deepEqual((await readdir(restored)).sort(), (await readdir(bot)).sort());
    const expected = await loadEverything(bot, baileys6);
    const actual = await loadEverything(restored, baileys6);
    assert.deepEqual(actual.creds, expected.creds);
    assert.deepEqual(actual.keys, expected.keys);
    assert.equal(actual.keys['pre-key']!['1'], undefined, 'a used pre-key stays deleted');
  });

  it('the sidecar stores what a running 6.7 bot writes; after an upgrade Baileys 7 loads the same identity and keys', async () => {
    const bot = await tempDir('live6');
    const auth = await writeSession(bot, { preKeys: 10 }, baileys6);
    const service = await startService(['sidecar', '--dir', bot, '--session', 'live6', '--debounce', '50', '--max-delay', '500'], env);
    try {
      await waitFor(
        async () => ((await service.metric('baileys_keeper_generation')) >= 1 ? true : null),
        20_000,
        () => service.output.join('\n'),
      );
      // The bot at work: sessions updated, pre-keys used up, creds saved, as Baileys 6.7 does it.
      for (let round = 0; round < 20; round++) {
        await auth.state.keys.set({
          session: { [`55119${round % 4}.0`]: sessionRecord() },
          'pre-key': { [String((round % 10) + 1)]: null },
        } as never);
        auth.state.creds.accountSyncCounter = round;
        await auth.saveCreds();
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    } finally {
      const ended = await service.stop();
      assert.equal(ended.code, 0, service.output.slice(-8).join('\n'));
    }
    assert.deepEqual(diffTrees(await storedHead(url, 'live6'), await readTree(bot)), [], 'the stored head is the directory the bot left');

    const upgraded = path.join(await tempDir('upgraded'), 'auth_info');
    assert.equal((await runCli(['restore', '--dir', upgraded, '--session', 'live6'], { env })).code, 0);
    const before = await loadEverything(bot, baileys6);
    const after = await loadEverything(upgraded, BAILEYS_7);
    const creds = (value: unknown) =>
      value as { registrationId: number; me: { id: string }; signedIdentityKey: unknown; noiseKey: unknown; advSecretKey: string };
    for (const field of ['registrationId', 'me', 'signedIdentityKey', 'noiseKey', 'advSecretKey'] as const) {
      assert.deepEqual(creds(after.creds)[field], creds(before.creds)[field], `Baileys 7 reads the same ${field}`);
    }
    assert.deepEqual(after.keys, before.keys, 'Baileys 7 reads every key the 6.7 bot left');
    assert.ok(Object.keys(after.keys['session'] ?? {}).length >= 4, 'the sessions the bot wrote are there');
  });
});
