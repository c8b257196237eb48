// What the loop makes of a login that leaves its directory (SPEC "Session lifecycle"), on a manual clock with
// real directories written by the real Baileys writer: creds.json deleted in place is a logout, told as an
// event; a directory moved away, replaced by an empty mount point and moved back (a remount) is none.
import assert from 'node:assert/strict';
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { waitFor } from '../../harness/sidecar.js';
import type { SessionEvent } from '../../src/lifecycle-events.js';
import { DIR_POLL_MS } from '../../src/watcher.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { startLoop } from '../support/loop.js';

describe('the loop and a login leaving its directory', async () => {
  const url = await freshDatabase('loop-lifecycle');
  const reasons = async (session: string) =>
    (
      await query<{ reason: string }>(url, 'SELECT reason FROM baileys_keeper.generations WHERE session_id = $1 ORDER BY generation', [
        session,
      ])
    ).map((row) => row.reason);

  it('creds.json deleted in place while watched: a logout generation and a logged_out event naming the login', async () => {
    const dir = await tempDir('in-place');
    await writeSession(dir, { preKeys: 2 });
    const events: SessionEvent[] = [];
    const loop = await startLoop(url, { dir, sessionId: 'in-place', onEvent: (event) => events.push(event) });
    await loop.advance(0);
    await rm(path.join(dir, 'creds.json'));
    await loop.seen('creds.json');
    await loop.advance(2_000);
    await waitFor(
      async () => ((await reasons('in-place')).includes('logout') ? true : null),
      10_000,
      () => loop.logs.join('\n'),
    );
    const told = events.filter((event) => event.event === 'logged_out');
    assert.equal(told.length, 1, JSON.stringify(events));
    assert.equal(told[0]!.jid, '5511987654321:7@s.whatsapp.net');
  });

  it('a remount — moved away, an empty mount point, moved back — is no logout, and the login stays protected', async () => {
    const root = await tempDir('remount');
    const dir = path.join(root, 'auth');
    await writeSession(dir, { preKeys: 2 });
    const events: SessionEvent[] = [];
    const loop = await startLoop(url, { dir, sessionId: 'remount', onEvent: (event) => events.push(event) });
    await loop.advance(0);
    await rename(dir, path.join(root, 'auth.real'));
    await mkdir(dir);
    // The watcher notices the directory replaced and watches the empty one; backups of it run.
    for (let i = 0; i < 8; i++) {
      await new Promise((resolve) => setTimeout(resolve, DIR_POLL_MS));
      await loop.advance(1_000);
    }
    await rmdir(dir);
    await rename(path.join(root, 'auth.real'), dir);
    for (let i = 0; i < 8; i++) {
      await new Promise((resolve) => setTimeout(resolve, DIR_POLL_MS));
      await loop.advance(1_000);
    }
    assert.ok(!(await reasons('remount')).includes('logout'), (await reasons('remount')).join(', '));
    assert.deepEqual(
      events.filter((event) => event.event === 'logged_out'),
      [],
    );
    await waitFor(
      () => (loop.sidecar.protection().protected ? true : null),
      10_000,
      () => loop.sidecar.protection().reasons.join(', '),
    );
  });
});
