// A restart compares the directory with the head by the metadata each stored version was read with
// (files.stamp), reading nothing when every file matches — and still catches every change made while no
// keeper ran: a file edited with its size kept, a file replaced by one carrying an older mtime, a file
// deleted, a file added, and a file whose metadata was never trustworthy (read within the racy window).
// Real files written by Baileys, a real PostgreSQL, the real loop on a manual clock.
import assert from 'node:assert/strict';
import { readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { DEFAULT_INTERVAL_MS } from '../../src/config.js';
import { KeyRing, makeKey } from '../../src/crypto.js';
import { createDatabase } from '../../src/db/pool.js';
import { SessionStore } from '../../src/store/index.js';
import { writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, storedHead } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { testLog } from '../support/log.js';
import { startLoop, type Loop } from '../support/loop.js';

/** Longer than the racy window (audit.ts RACY_WINDOW_NS): files this old have trustworthy stamps. */
const PAST_RACY_MS = 2_100;

describe('a restart from the recorded metadata', async () => {
  const url = await freshDatabase('stamps');

  const generations = async (session: string) =>
    Number(
      (await query<{ n: string }>(url, 'SELECT count(*) AS n FROM baileys_keeper.generations WHERE session_id = $1', [session]))[0]!.n,
    );
  const unknownStamps = async (session: string) =>
    (
      await query<{ name: string }>(
        url,
        'SELECT name FROM baileys_keeper.files WHERE session_id = $1 AND generation_to IS NULL AND stamp IS NULL',
        [session],
      )
    ).map((row) => row.name);
  const stop = (loop: Loop) => loop.clock.runUntilSettled(loop.sidecar.shutdown(0));
  /** Makes the stored head row of `name` (content and digest) say `{}`, without touching its recorded stamp. */
  const tamper = (session: string, name: string) =>
    query(
      url,
      "UPDATE baileys_keeper.files SET content = '\\x7b7d', sha256 = sha256('\\x7b7d'), size = 2 WHERE session_id = $1 AND name = $2 AND generation_to IS NULL",
      [session, name],
    );

  /** A Baileys session written long enough ago that a first keeper records every file's stamp; then stopped. */
  async function stored(session: string): Promise<{ dir: string; names: string[] }> {
    const dir = await tempDir(session);
    await writeSession(dir, { preKeys: 4 });
    await sleep(PAST_RACY_MS);
    const first = await startLoop(url, { dir, sessionId: session });
    await stop(first);
    assert.deepEqual(await unknownStamps(session), [], 'every file read outside the racy window has its stamp recorded');
    return { dir, names: [...(await readTree(dir)).keys()].sort() };
  }

  /** One character of a stored JSON value changed: the same size, still valid JSON. */
  async function sameSizeEdit(file: string): Promise<string> {
    const text = await readFile(file, 'utf8');
    const at = text.search(/[A-Za-z0-9+/]{8}/);
    assert.ok(at >= 0, `no base64 run in ${file}`);
    const edited = text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
    assert.equal(edited.length, text.length);
    return edited;
  }

  async function assertHeadIsDirectory(session: string, dir: string): Promise<void> {
    assert.deepEqual(diffTrees(await storedHead(url, session), await readTree(dir)), []);
  }

  it('reads nothing when every file matches the recorded metadata: a tampered stored row is not even looked at', async () => {
    const { dir, names } = await stored('unchanged');
    const before = await generations('unchanged');
    const tampered = names.find((name) => name.startsWith('pre-key-'))!;
    await tamper('unchanged', tampered);
    const again = await startLoop(url, { dir, sessionId: 'unchanged' });
    assert.ok(again.sidecar.ready, 'compared with the head at start');
    assert.equal(await again.backups('noop'), 1, 'the start-up comparison counts as a backup that found nothing to store');
    assert.equal(await again.backups('success'), 0);
    assert.equal(await generations('unchanged'), before, 'no generation written');
    assert.equal((await storedHead(url, 'unchanged')).get(tampered), '{}', 'the file was not read: its row was not compared');
    await stop(again);
  });

  it('a file edited in place with its size kept is read and stored', async () => {
    const { dir, names } = await stored('edited');
    const before = await generations('edited');
    const name = names.find((entry) => entry.startsWith('session-'))!;
    const file = path.join(dir, name);
    const edited = await sameSizeEdit(file);
    await writeFile(file, edited);
    const again = await startLoop(url, { dir, sessionId: 'edited' });
    assert.equal(await generations('edited'), before + 1, 'stored at start');
    assert.equal((await storedHead(url, 'edited')).get(name), edited);
    await stop(again);
    await assertHeadIsDirectory('edited', dir);
  });

  it('a file replaced by one of the same size carrying the old mtime is read and stored', async () => {
    const { dir, names } = await stored('replaced');
    const before = await generations('replaced');
    const name = names.find((entry) => entry.startsWith('session-'))!;
    const file = path.join(dir, name);
    const old = await stat(file);
    const edited = await sameSizeEdit(file);
    // Written aside, dated back to the original's times, then renamed over it: size and mtime as before.
    const aside = path.join(dir, `.${name}.tmp`);
    await writeFile(aside, edited);
    await utimes(aside, old.atime, old.mtime);
    await rename(aside, file);
    const now = await stat(file);
    assert.equal(now.size, old.size);
    assert.ok(Math.abs(now.mtimeMs - old.mtimeMs) < 1, 'the same mtime, to the millisecond utimes keeps');
    const again = await startLoop(url, { dir, sessionId: 'replaced' });
    assert.equal(await generations('replaced'), before + 1, 'stored at start');
    assert.equal((await storedHead(url, 'replaced')).get(name), edited);
    await stop(again);
    await assertHeadIsDirectory('replaced', dir);
  });

  it('a file deleted while no keeper ran is deleted from the head', async () => {
    const { dir, names } = await stored('deleted');
    const name = names.find((entry) => entry.startsWith('pre-key-'))!;
    await unlink(path.join(dir, name));
    const again = await startLoop(url, { dir, sessionId: 'deleted' });
    assert.ok(!(await storedHead(url, 'deleted')).has(name), 'deleted at start');
    await assertHeadIsDirectory('deleted', dir);
    await stop(again);
  });

  it('a file added while no keeper ran is stored', async () => {
    const { dir, names } = await stored('added');
    const source = names.find((entry) => entry.startsWith('pre-key-'))!;
    await writeFile(path.join(dir, 'pre-key-999.json'), await readFile(path.join(dir, source)));
    const again = await startLoop(url, { dir, sessionId: 'added' });
    assert.ok((await storedHead(url, 'added')).has('pre-key-999.json'), 'stored at start');
    await assertHeadIsDirectory('added', dir);
    await stop(again);
  });

  it('a file whose stamp is not known makes the restart read the whole directory', async () => {
    const { dir, names } = await stored('unknown');
    const tampered = names.find((name) => name.startsWith('pre-key-'))!;
    await tamper('unknown', tampered);
    await query(url, "UPDATE baileys_keeper.files SET stamp = NULL WHERE session_id = 'unknown' AND name = 'creds.json'");
    const again = await startLoop(url, { dir, sessionId: 'unknown' });
    await assertHeadIsDirectory('unknown', dir);
    assert.deepEqual(await unknownStamps('unknown'), [], 'the whole read at start recorded the missing stamp');
    await stop(again);
  });

  it('encryption turned on between runs: the restart reads the directory and stores the head sealed, whatever the stamps say', async () => {
    const { dir } = await stored('sealed');
    const again = await startLoop(url, { dir, sessionId: 'sealed', keys: new KeyRing([makeKey(randomBytes(32))]) });
    const plaintext = await query(
      url,
      "SELECT name FROM baileys_keeper.files WHERE session_id = 'sealed' AND generation_to IS NULL AND key_id IS NULL",
    );
    assert.deepEqual(plaintext, [], 'every head row sealed at start, as a whole read always did');
    await stop(again);
  });

  it('no start by metadata where a backup would refuse or re-store rows: a key missing, plaintext where encryption is required', async () => {
    const dir = await tempDir('keyless');
    await writeSession(dir, { preKeys: 2 });
    await sleep(PAST_RACY_MS);
    const key = makeKey(randomBytes(32));
    await stop(await startLoop(url, { dir, sessionId: 'keyless', keys: new KeyRing([key]) }));
    assert.deepEqual(await unknownStamps('keyless'), []);
    const db = createDatabase({ url, schema: 'baileys_keeper', log: testLog });
    try {
      assert.ok(await new SessionStore(db, new KeyRing([key])).headStamps('keyless'), 'with its key: trusted by metadata');
      assert.equal(await new SessionStore(db).headStamps('keyless'), null, 'no key configured: the whole read fails as it always did');
      assert.equal(
        await new SessionStore(db, new KeyRing([makeKey(randomBytes(32))])).headStamps('keyless'),
        null,
        'rows under a key not configured',
      );
      const plain = await stored('required');
      assert.ok(plain.names.length > 0);
      assert.equal(
        await new SessionStore(db, null, { requireEncryption: true }).headStamps('required'),
        null,
        'plaintext, encryption required',
      );
    } finally {
      await db.close();
    }
  });

  it('records no stamp for a file read within the racy window, then records it at the next audit', async () => {
    const dir = await tempDir('racy');
    await writeSession(dir, { preKeys: 2 });
    const loop = await startLoop(url, { dir, sessionId: 'racy' });
    const racy = await unknownStamps('racy');
    assert.ok(racy.includes('creds.json'), `files just written are stored without a stamp (unknown: ${racy.join(', ')})`);
    await sleep(PAST_RACY_MS);
    await loop.advance(DEFAULT_INTERVAL_MS);
    await stop(loop);
    assert.deepEqual(await unknownStamps('racy'), [], 'the audit read them again and recorded their stamps');
  });
});
