// What the heartbeat asks a loop (BackupLoop.allProtected, SPEC "Session lifecycle"): true only while this
// process writes the session and everything on disk is stored; a held-back file makes it false until the
// file is stored; a standby keeper never says it. On a manual clock, real files and a real PostgreSQL.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { startLoop } from '../support/loop.js';

describe('allProtected (the heartbeat predicate)', async () => {
  const url = await freshDatabase('all-protected');

  it('true while the writer has stored everything, false while a file is held back, true again once stored', async () => {
    const dir = await tempDir('all-protected');
    await writeSession(dir, { preKeys: 2 });
    const loop = await startLoop(url, { dir, sessionId: 'all-protected' });
    await loop.advance(0);
    assert.equal(loop.sidecar.allProtected(), true);

    // A torn key file: re-read, then held back (never stored): the session is not protected.
    await writeFile(path.join(dir, 'pre-key-9.json'), '{"half":');
    await loop.seen('pre-key-9.json');
    // A torn write counts once it outlives --max-delay plus one backup's allowance (10 s).
    await loop.advance(12_000);
    await waitFor(
      () => (loop.sidecar.allProtected() ? null : true),
      10_000,
      () => 'still protected with a torn file',
    );
    assert.ok(loop.sidecar.protection().reasons.includes('held_back'), loop.sidecar.protection().reasons.join(', '));

    await writeFile(path.join(dir, 'pre-key-9.json'), '{"whole":true}');
    await loop.seen('pre-key-9.json');
    await loop.advance(5_000);
    await waitFor(
      () => (loop.sidecar.allProtected() ? true : null),
      10_000,
      () => loop.sidecar.protection().reasons.join(', '),
    );
  });

  it('a standby keeper of the same session never says all is protected', async () => {
    const dir = await tempDir('all-protected-standby');
    await writeSession(dir, { preKeys: 1 });
    const writer = await startLoop(url, { dir, sessionId: 'standby', owner: 'writer:1' });
    const standby = await startLoop(url, { dir, sessionId: 'standby', owner: 'standby:2' });
    await writer.advance(0);
    await standby.advance(0);
    assert.equal(writer.sidecar.allProtected(), true);
    assert.equal(standby.sidecar.writerLease, null);
    assert.equal(standby.sidecar.allProtected(), false);
  });
});
