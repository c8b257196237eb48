// The promise in one scenario: what Baileys wrote comes back exactly, through the real CLI.
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { appStateKey, loadEverything, senderKeyRecord, sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

describe('backup → restore round trip with the real Baileys writer', async () => {
  const url = await freshDatabase('roundtrip');
  const env = cliEnv(url);

  it('restores creds and every key kind deep-equal, and deleted keys stay deleted', async () => {
    const bot = await tempDir('bot');
    const auth = await writeSession(bot, { preKeys: 30, sessions: 6, senderKeys: 4, appStateKeys: 3 });
    const first = await runCli(['backup', '--dir', bot], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /generation 1 of session default/);

    // The bot runs on: pre-keys are used up (deleted), sessions and sender keys change, creds move on.
    await auth.state.keys.set({
      'pre-key': { '1': null, '2': null, '3': null, '31': Curve.generateKeyPair() },
      session: { '5511900000001.0': sessionRecord() },
      'sender-key': { '120363000000001@g.us--5511900000001--0': senderKeyRecord() },
      'app-state-sync-key': { AAAAAAAA: appStateKey() },
    });
    auth.state.creds.nextPreKeyId = 32;
    auth.state.creds.accountSyncCounter = 5;
    await auth.saveCreds();
    const second = await runCli(['backup', '--dir', bot], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /generation 2 .*3 deleted/);

    const restored = path.join(await tempDir('restored'), 'auth_info');
    const restore = await runCli(['restore', '--dir', restored], { env });
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
    assert.match(restore.stdout, /restored generation 2/);

    const expected = await loadEverything(bot);
    const actual = await loadEverything(restored);
    assert.deepEqual(actual.creds, expected.creds);
    assert.deepEqual(actual.keys, expected.keys);
    for (const id of ['1', '2', '3']) assert.equal(actual.keys['pre-key']![id], undefined, `pre-key ${id} stays deleted`);
    assert.ok(actual.keys['pre-key']!['31'], 'the new pre-key is there');
    assert.deepEqual((await readdir(restored)).sort(), (await readdir(bot)).sort());
    for (const name of await readdir(restored)) {
      assert.equal((await stat(path.join(restored, name))).mode & 0o777, 0o600, `${name} is 0600`);
    }
  });
});
