// Encryption at rest in the store, on a real PostgreSQL: what the database holds, change detection
// with a keyed hash, rows moved or altered by someone with database access, mixed histories, rekey.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { KeyRing, LEGACY_CIPHER, makeKey, NONCE_BYTES, SALT_BYTES, TAG_BYTES } from '../../src/crypto.js';
import { IntegrityError, RefusedError } from '../../src/errors.js';
import { readSnapshot } from '../../src/snapshot.js';
import { SessionStore } from '../../src/store/index.js';
import { REGISTERED_JID, writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { testStore } from '../support/store.js';

const fast = { retryDelaysMs: [1, 1] };
const oldKey = makeKey(randomBytes(32), 'old');
const newKey = makeKey(randomBytes(32), 'new');

describe('encryption at rest', async () => {
  const t = await testStore('encryption');
  const plain = t.store;
  const withOld = new SessionStore(t.db, new KeyRing([oldKey]));
  const rotated = new SessionStore(t.db, new KeyRing([newKey, oldKey]));
  const onlyNew = new SessionStore(t.db, new KeyRing([newKey]));
  // Writes rows as keepers did before per-row keys (format 1: one content key per configured key).
  const legacyOld = new SessionStore(t.db, new KeyRing([oldKey], LEGACY_CIPHER));

  async function backup(store: SessionStore, sessionId: string, dir: string) {
    const lease = await t.lease(sessionId);
    try {
      return await store.backup(sessionId, await readSnapshot(dir, fast), { lease, allowReplace: false, reason: 'test' });
    } finally {
      await store.releaseLease(sessionId, lease);
    }
  }

  async function rows(sessionId: string) {
    return query<{
      name: string;
      generation_from: string;
      content: Buffer;
      sha256: Buffer;
      size: number;
      key_id: string | null;
      cipher_version: number | null;
    }>(
      t.url,
      'SELECT name, generation_from, content, sha256, size, key_id, cipher_version FROM ' +
        'baileys_keeper.files WHERE session_id = $1 ORDER BY name, generation_from',
      [sessionId],
    );
  }

  async function contentsAt(store: SessionStore, sessionId: string, generation?: number) {
    const loaded = await store.loadPoint(sessionId, { generation: generation ?? null });
    return new Map(loaded!.files.map((file) => [file.name, file.content.toString('utf8')]));
  }

  /**
   * A session with one generation per store, generation g written by stores[g - 1]: from generation 2
   * on, generation g changes pre-key-g. Returns the directory and its tree at each generation.
   */
  async function historyBy(sessionId: string, stores: SessionStore[], preKeys = 5) {
    const dir = await tempDir(sessionId);
    const auth = await writeSession(dir, { preKeys });
    const trees: Map<string, string>[] = [];
    for (const [i, store] of stores.entries()) {
      if (i > 0) await auth.state.keys.set({ 'pre-key': { [String(i + 1)]: Curve.generateKeyPair() } });
      assert.equal((await backup(store, sessionId, dir)).kind, 'success');
      trees.push(await readTree(dir));
    }
    return { dir, trees };
  }

  /** A session of three generations under `store`: pre-key-2 changes in generation 2, pre-key-3 in 3. */
  async function threeGenerations(sessionId: string, store: SessionStore) {
    return (await historyBy(sessionId, [store, store, store])).dir;
  }

  it('stores ciphertext, keyed hashes and the key id; no plaintext, no plaintext hash, no full phone number', async () => {
    const dir = await tempDir('enc');
    await writeSession(dir, { preKeys: 5 });
    const result = await backup(withOld, 'enc', dir);
    assert.equal(result.kind, 'success');
    const tree = await readTree(dir);
    for (const row of await rows('enc')) {
      const original = Buffer.from(tree.get(row.name)!, 'utf8');
      assert.equal(row.key_id, 'old');
      assert.equal(row.cipher_version, 2, `${row.name}: a key of its own (format 2)`);
      assert.equal(row.content.length, SALT_BYTES + NONCE_BYTES + row.size + TAG_BYTES);
      assert.ok(!row.content.includes(original.subarray(0, 24)), `${row.name}: content is not stored in clear`);
      assert.notDeepEqual(row.sha256, createHash('sha256').update(original).digest(), `${row.name}: no plaintext sha256`);
    }
    const [session] = await query<{ registered_jid: string }>(
      t.url,
      "SELECT registered_jid FROM baileys_keeper.sessions WHERE session_id = 'enc'",
    );
    assert.equal(session!.registered_jid, '5511*****4321');
    assert.ok(!session!.registered_jid.includes(REGISTERED_JID.split(':')[0]!));
    assert.deepEqual(await contentsAt(withOld, 'enc'), tree);
    assert.deepEqual(await withOld.verify('enc'), { checked: tree.size, failures: [] });
  });

  it('a file large enough to be written on its own row (over 1 MiB) is sealed in the current format and reads back', async () => {
    const dir = await tempDir('enc-large');
    await writeSession(dir, { preKeys: 2 });
    const large = JSON.stringify({ store: 'x'.repeat(3 * 1024 * 1024) });
    await writeFile(path.join(dir, 'app-state-sync-version-large.json'), large);
    assert.equal((await backup(withOld, 'enc-large', dir)).kind, 'success');
    const row = (await rows('enc-large')).find((r) => r.name === 'app-state-sync-version-large.json')!;
    assert.deepEqual([row.key_id, row.cipher_version], ['old', 2]);
    assert.equal((await contentsAt(withOld, 'enc-large')).get('app-state-sync-version-large.json'), large);
  });

  it('detects changes with the keyed hash: an unchanged directory is a no-op, one changed key is one row', async () => {
    const dir = await tempDir('detect');
    const auth = await writeSession(dir, { preKeys: 5 });
    await backup(withOld, 'detect', dir);
    assert.equal((await backup(withOld, 'detect', dir)).kind, 'noop');
    await auth.state.keys.set({ 'pre-key': { '4': Curve.generateKeyPair() } });
    const second = await backup(withOld, 'detect', dir);
    assert.ok(second.kind === 'success' && second.changed === 1, JSON.stringify(second));
  });

  it('restores a history that mixes plaintext and encrypted generations; turning encryption on re-stores the head encrypted', async () => {
    const dir = await tempDir('mixed');
    const auth = await writeSession(dir, { preKeys: 5 });
    await backup(plain, 'mixed', dir);
    const gen1 = await readTree(dir);
    const second = await backup(withOld, 'mixed', dir);
    assert.ok(second.kind === 'success' && second.changed === gen1.size, 'every plaintext head file is stored again, encrypted');
    await auth.state.keys.set({ 'pre-key': { '1': Curve.generateKeyPair() } });
    await backup(withOld, 'mixed', dir);
    const gen3 = await readTree(dir);
    const keyIds = new Set((await rows('mixed')).map((row) => row.key_id));
    assert.deepEqual(keyIds, new Set([null, 'old']));
    assert.deepEqual(await contentsAt(withOld, 'mixed', 1), gen1);
    assert.deepEqual(await contentsAt(withOld, 'mixed', 2), gen1);
    assert.deepEqual(await contentsAt(withOld, 'mixed', 3), gen3);
    assert.equal((await withOld.verify('mixed')).failures.length, 0);
  });

  it('refuses a missing or wrong key, naming the key id the data needs', async () => {
    const dir = await tempDir('nokey');
    await writeSession(dir, { preKeys: 3 });
    await backup(withOld, 'nokey', dir);
    for (const store of [plain, onlyNew, new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32))]))]) {
      await assert.rejects(
        store.loadPoint('nokey', {}),
        (error: unknown) => error instanceof IntegrityError && /encrypted with key id old, which is not configured/.test(error.message),
      );
      const verified = await store.verify('nokey');
      assert.ok(verified.failures.length > 0 && verified.failures.every((f) => f.missingKey === 'old'));
    }
    // A backup without the key must not quietly store the session in plaintext over it.
    await assert.rejects(
      backup(plain, 'nokey', dir),
      (error: unknown) => error instanceof IntegrityError && /key id old/.test(error.message),
    );
    assert.ok((await rows('nokey')).every((row) => row.key_id === 'old'));
  });

  it(
    'the same key under a different explicit id still decrypts (found ' +
      'by fingerprint), but a different key under the right id does not',
    async () => {
      const material = randomBytes(32);
      const dir = await tempDir('fp');
      await writeSession(dir, { preKeys: 2 });
      await backup(new SessionStore(t.db, new KeyRing([makeKey(material)])), 'fp', dir);
      const renamed = new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32), 'next'), makeKey(material, 'previous')]));
      assert.deepEqual(await contentsAt(renamed, 'fp'), await readTree(dir));
      const impostor = new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32), 'old')]));
      await backup(withOld, 'fp2', dir);
      await assert.rejects(impostor.loadPoint('fp2', {}), /cannot be decrypted with key id old \(wrong key/);
    },
  );

  it('rows swapped or moved inside the database fail to decrypt, and the restore names an older generation that verifies', async () => {
    const dir = await threeGenerations('swap', withOld);
    const byName = new Map((await rows('swap')).map((row) => [`${row.name}@${row.generation_from}`, row]));
    // Put generation 1's ciphertext of pre-key-3 into its generation-3 row: a valid ciphertext, the wrong place.
    await query(
      t.url,
      "UPDATE baileys_keeper.files SET content = $1 WHERE session_id = 'swap' AND name = 'pre-key-3.json' AND generation_from = 3",
      [byName.get('pre-key-3.json@1')!.content],
    );
    await assert.rejects(
      withOld.loadPoint('swap', {}),
      (error: unknown) =>
        error instanceof IntegrityError &&
        /generation 3 of session swap failed its integrity check: "pre-key-3\.json": cannot be decrypted/.test(error.message) &&
        /Generation 2 \(.*\) verifies: restore it with --generation 2/.test(error.message),
    );
    assert.equal((await contentsAt(withOld, 'swap', 2)).size, (await readTree(dir)).size);
    // Moving a row to another session is caught the same way.
    await query(t.url, "INSERT INTO baileys_keeper.sessions (session_id) VALUES ('thief')");
    await query(t.url, "UPDATE baileys_keeper.files SET session_id = 'thief' WHERE session_id = 'swap' AND name = 'creds.json'");
    const stolen = await withOld.verify('thief');
    // The thief session has encrypted rows but no encryption marker of its own: that is reported too.
    assert.deepEqual(
      stolen.failures.map((f) => f.name),
      ['', 'creds.json'],
    );
  });

  it('rekey re-encrypts plaintext and old-key history under the newest key; restores work during and after it', async () => {
    const { dir } = await historyBy('rekey', [plain, withOld, withOld], 8);
    const expected = await Promise.all([1, 2, 3].map((g) => contentsAt(withOld, 'rekey', g)));
    const total = (await rows('rekey')).length;

    // Restores run while the rekey commits batch after batch: every moment must restore.
    let rekeying = true;
    const reader = (async () => {
      let reads = 0;
      while (rekeying || reads === 0) {
        assert.deepEqual(await contentsAt(rotated, 'rekey', 1 + (reads % 3)), expected[reads % 3]);
        reads++;
      }
      return reads;
    })();
    const result = await rotated.rekey('rekey', 2).finally(() => (rekeying = false));
    assert.ok((await reader) > 0);
    assert.deepEqual(result, { rewritten: total, keyId: 'new' });
    assert.ok((await rows('rekey')).every((row) => row.key_id === 'new'));
    for (const g of [1, 2, 3])
      assert.deepEqual(await contentsAt(onlyNew, 'rekey', g), expected[g - 1], `generation ${g} with only the new key`);
    assert.equal((await onlyNew.verify('rekey')).failures.length, 0);
    assert.deepEqual(await rotated.rekey('rekey'), { rewritten: 0, keyId: 'new' }, 'a second rekey has nothing to do');
    assert.equal((await backup(onlyNew, 'rekey', dir)).kind, 'noop', 'change detection works on the rekeyed head');
    const creds = JSON.parse(await readFile(path.join(dir, 'creds.json'), 'utf8')) as { me: { id: string } };
    assert.equal(creds.me.id, REGISTERED_JID);
  });

  /** What someone with write access to the table does to creds.json's head row: plaintext of their own, a matching sha256. */
  async function forgeCreds(sessionId: string, extraSet = '') {
    const forged = Buffer.from('{"attacker":"creds"}');
    await query(
      t.url,
      `UPDATE baileys_keeper.files SET key_id = NULL, cipher_version = NULL, content = $2, sha256 = $3, size = $4${extraSet}
        WHERE session_id = $1 AND name = 'creds.json' AND generation_to IS NULL`,
      [sessionId, forged, createHash('sha256').update(forged).digest(), forged.length],
    );
  }

  it('a plaintext row forged into an encrypted session is refused by verify, restore and rekey', async () => {
    await threeGenerations('forged', withOld);
    await forgeCreds('forged');
    const verified = await withOld.verify('forged');
    assert.deepEqual(
      verified.failures.map((f) => [f.name, f.generationFrom]),
      [['creds.json', 1]],
    );
    assert.match(verified.failures[0]!.reason, /"creds\.json": stored in plaintext where session forged is encrypted since generation 1/);
    for (const generation of [undefined, 1, 2]) {
      await assert.rejects(
        withOld.loadPoint('forged', { generation: generation ?? null }),
        (error: unknown) =>
          error instanceof IntegrityError &&
          /"creds\.json": stored in plaintext/.test(error.message) &&
          /No older retained generation verifies/.test(error.message),
      );
    }
    await assert.rejects(
      rotated.rekey('forged'),
      (error: unknown) => error instanceof IntegrityError && /"creds\.json": stored in plaintext/.test(error.message),
    );
    const creds = (await rows('forged')).find((row) => row.name === 'creds.json')!;
    assert.equal(creds.key_id, null, 'rekey did not launder the forged row');
  });

  it('the forged row is refused when its generation is moved below the first encrypted one too', async () => {
    const dir = await tempDir('forged-low');
    const auth = await writeSession(dir, { preKeys: 3 });
    await backup(plain, 'forged-low', dir);
    await auth.state.keys.set({ 'pre-key': { '1': Curve.generateKeyPair() } });
    await backup(withOld, 'forged-low', dir); // generation 2: the first encrypted one
    assert.equal((await contentsAt(withOld, 'forged-low', 1)).size, (await readTree(dir)).size, 'the plaintext history still restores');
    await forgeCreds('forged-low', ', generation_from = 0');
    const verified = await withOld.verify('forged-low');
    assert.ok(
      verified.failures.some((f) => f.name === 'creds.json'),
      JSON.stringify(verified.failures),
    );
    await assert.rejects(withOld.loadPoint('forged-low', {}), /"creds\.json": stored from generation 0, before the first one/);
  });

  it('a removed or altered encryption marker is reported by verify, and then no plaintext row is trusted', async () => {
    for (const [session, edit] of [
      ['unmarked', 'encrypted_since = NULL'],
      ['remarked', 'encrypted_since = 99'],
    ] as const) {
      await threeGenerations(session, withOld);
      await query(t.url, `UPDATE baileys_keeper.sessions SET ${edit} WHERE session_id = $1`, [session]);
      const clean = await withOld.verify(session);
      assert.deepEqual(
        clean.failures.map((f) => [f.name, f.generationFrom]),
        [['', null]],
      );
      assert.match(
        clean.failures[0]!.reason,
        /the encryption marker of session \w+ (is missing although encrypted rows exist|does not verify)/,
      );
      assert.equal((await contentsAt(withOld, session)).size > 0, true, 'encrypted rows still restore');
      await forgeCreds(session);
      await assert.rejects(withOld.loadPoint(session, {}), /"creds\.json": stored in plaintext where the encryption marker of session/);
    }
  });

  it('turning encryption on with a partial (sidecar) backup still stores the whole plaintext head again, encrypted', async () => {
    const dir = await tempDir('scoped');
    await writeSession(dir, { preKeys: 4 });
    await backup(plain, 'scoped', dir);
    const lease = await t.lease('scoped');
    const snapshot = await readSnapshot(dir, fast);
    const result = await withOld.backup('scoped', snapshot, {
      lease,
      allowReplace: false,
      reason: 'test',
      scope: new Set(['pre-key-1.json']),
    });
    await withOld.releaseLease('scoped', lease);
    assert.ok(result.kind === 'success' && result.changed === snapshot.files.size, JSON.stringify(result));
    const current = await query<{ key_id: string | null }>(
      t.url,
      "SELECT key_id FROM baileys_keeper.files WHERE session_id = 'scoped' AND generation_to IS NULL",
    );
    assert.ok(current.every((row) => row.key_id === 'old'));
    assert.deepEqual(await contentsAt(withOld, 'scoped'), await readTree(dir));
    assert.equal((await withOld.verify('scoped')).failures.length, 0);
  });

  it('rekey refuses a session never backed up encrypted; without the key a backup never writes plaintext into an encrypted one', async () => {
    const dir = await tempDir('never');
    await writeSession(dir, { preKeys: 2 });
    await backup(plain, 'never', dir);
    await assert.rejects(
      rotated.rekey('never'),
      (error: unknown) => error instanceof RefusedError && /has never been backed up with encryption on/.test(error.message),
    );
    await backup(withOld, 'never', dir);
    const other = await tempDir('never-other');
    await writeFile(path.join(other, 'app-state-sync-version-regular.json'), '{"version":1}');
    await assert.rejects(
      backup(plain, 'never', other),
      (error: unknown) => error instanceof IntegrityError && /stored encrypted since generation 2 \(key id old\)/.test(error.message),
    );
  });

  it('after rekey no plaintext is trusted anywhere: a forged row in old, once-plaintext history is refused', async () => {
    const dir = await tempDir('rekeyed');
    const auth = await writeSession(dir, { preKeys: 3 });
    await backup(plain, 'rekeyed', dir);
    await auth.state.keys.set({ 'pre-key': { '1': Curve.generateKeyPair() } });
    await backup(withOld, 'rekeyed', dir);
    await rotated.rekey('rekeyed');
    const [marker] = await query<{ encrypted_since: string; encrypted_since_key_id: string }>(
      t.url,
      "SELECT encrypted_since, encrypted_since_key_id FROM baileys_keeper.sessions WHERE session_id = 'rekeyed'",
    );
    assert.deepEqual(marker, { encrypted_since: '1', encrypted_since_key_id: 'new' });
    assert.equal((await onlyNew.verify('rekeyed')).failures.length, 0, 'the marker verifies with only the new key');
    const forged = Buffer.from('{"x":1}');
    await query(
      t.url,
      'UPDATE baileys_keeper.files SET key_id = NULL, cipher_version = NULL, content = $1, sha256 = $2, size = ' +
        "$3 WHERE session_id = 'rekeyed' AND name = 'pre-key-1.json' AND generation_from = 1",
      [forged, createHash('sha256').update(forged).digest(), forged.length],
    );
    await assert.rejects(
      onlyNew.loadPoint('rekeyed', { generation: 1 }),
      /"pre-key-1\.json": stored in plaintext where session rekeyed is encrypted since generation 1/,
    );
  });

  it('a generation with a missing row is not named as the one to restore; an older complete one is', async () => {
    await threeGenerations('gap', withOld);
    // pre-key-2 changed in generation 2: deleting that version leaves generation 2 one file short.
    await query(t.url, "DELETE FROM baileys_keeper.files WHERE session_id = 'gap' AND name = 'pre-key-2.json' AND generation_from = 2");
    await query(
      t.url,
      'UPDATE baileys_keeper.files SET content = set_byte(content, 20, get_byte(content, ' +
        "20) # 1) WHERE session_id = 'gap' AND name = 'pre-key-3.json' AND generation_from = 3",
    );
    await assert.rejects(
      withOld.loadPoint('gap', {}),
      (error: unknown) =>
        error instanceof IntegrityError && /Generation 1 \(.*\) verifies: restore it with --generation 1/.test(error.message),
    );
    await assert.rejects(
      withOld.loadPoint('gap', { generation: 2 }),
      /should have \d+ files but \d+ are stored\. Nothing was written\. Generation 1 \(.*\) verifies/,
    );
  });

  /** Everything someone with database access can do to make an encrypted session look never encrypted. */
  async function stripToPlaintext(sessionId: string, forged: Map<string, string>) {
    await query(
      t.url,
      'UPDATE baileys_keeper.sessions SET encrypted_since = NULL, ' +
        'encrypted_since_key_id = NULL, encrypted_since_mac = NULL WHERE session_id = $1',
      [sessionId],
    );
    for (const row of await rows(sessionId)) {
      const content = Buffer.from(forged.get(row.name) ?? '{"forged":true}');
      await query(
        t.url,
        'UPDATE baileys_keeper.files SET key_id = NULL, cipher_version = NULL, content = $3, sha256 = ' +
          '$4, size = $5 WHERE session_id = $1 AND name = $2 AND generation_from = $6',
        [sessionId, row.name, content, createHash('sha256').update(content).digest(), content.length, row.generation_from],
      );
    }
  }

  it('KEEPER_REQUIRE_ENCRYPTION: a session stripped to plaintext (marker removed, every row forged) is refused; without it, it is not', async () => {
    const required = new SessionStore(t.db, new KeyRing([oldKey]), { requireEncryption: true });
    const dir = await threeGenerations('stripped', withOld);
    const forged = new Map((await readTree(dir)).entries());
    forged.set('creds.json', '{"attacker":"creds"}');
    await stripToPlaintext('stripped', forged);

    // The limit this setting closes: with no marker and no encrypted row, the session looks never encrypted.
    assert.equal((await contentsAt(withOld, 'stripped')).get('creds.json'), '{"attacker":"creds"}');
    assert.equal((await withOld.verify('stripped')).failures.length, 0);

    const verified = await required.verify('stripped');
    assert.ok(
      verified.failures.length > 0 &&
        verified.failures.every((f) => /stored in plaintext, and KEEPER_REQUIRE_ENCRYPTION is on/.test(f.reason)),
      JSON.stringify(verified.failures),
    );
    assert.ok(verified.failures.some((f) => f.name === 'creds.json'));
    await assert.rejects(
      required.loadPoint('stripped', {}),
      (error: unknown) =>
        error instanceof IntegrityError &&
        /"creds\.json": stored in plaintext, and KEEPER_REQUIRE_ENCRYPTION is on/.test(error.message) &&
        /Nothing was written\. The session has no encryption marker: either it was never encrypted .* or someone with database access stripped it to plaintext \(then do not/.test(
          error.message,
        ),
    );
    // A writer under the setting does not start encryption over it (which would make it look genuine).
    const rowsBefore = await rows('stripped');
    await assert.rejects(
      backup(required, 'stripped', dir),
      (error: unknown) => error instanceof IntegrityError && /someone with database access replaced its rows/.test(error.message),
    );
    assert.deepEqual(await rows('stripped'), rowsBefore, 'nothing was written');
    const [session] = await query<{ encrypted_since: string | null }>(
      t.url,
      "SELECT encrypted_since FROM baileys_keeper.sessions WHERE session_id = 'stripped'",
    );
    assert.equal(session!.encrypted_since, null, 'no new marker');
  });

  it(
    'KEEPER_REQUIRE_ENCRYPTION on a session encrypted later: its plaintext ' +
      'history is refused until rekey (run without the setting), then everything works',
    async () => {
      const required = new SessionStore(t.db, new KeyRing([oldKey]), { requireEncryption: true });
      const requiredRotated = new SessionStore(t.db, new KeyRing([newKey, oldKey]), { requireEncryption: true });
      const requiredAfterRekey = new SessionStore(t.db, new KeyRing([newKey]), { requireEncryption: true });
      const dir = await tempDir('late');
      const auth = await writeSession(dir, { preKeys: 4 });
      await backup(plain, 'late', dir);
      // Under the setting, a plaintext session is not started on: that is how a stripped one would look.
      await assert.rejects(
        backup(required, 'late', dir),
        (error: unknown) =>
          error instanceof IntegrityError &&
          /is stored in plaintext \(no encryption marker, no encrypted row\) and KEEPER_REQUIRE_ENCRYPTION is on, so nothing was written/.test(
            error.message,
          ),
      );
      assert.ok(
        (await rows('late')).every((row) => row.key_id === null),
        'nothing was written',
      );
      await assert.rejects(required.loadPoint('late', {}), /"creds\.json": stored in plaintext, and KEEPER_REQUIRE_ENCRYPTION is on/);

      // The documented order: a backup with the key (stores the head encrypted), rekey, then the setting.
      assert.equal((await backup(withOld, 'late', dir)).kind, 'success');
      await auth.state.keys.set({ 'pre-key': { '1': Curve.generateKeyPair() } });
      assert.equal((await backup(required, 'late', dir)).kind, 'success', 'backups under the setting once the session is encrypted');
      assert.deepEqual(await contentsAt(required, 'late'), await readTree(dir));
      await assert.rejects(
        required.loadPoint('late', { generation: 1 }),
        /stored in plaintext, and KEEPER_REQUIRE_ENCRYPTION is on;.*Nothing was written\. Plaintext history from before encryption is encrypted by 'baileys-keeper rekey' run without KEEPER_REQUIRE_ENCRYPTION/,
      );
      assert.ok((await required.verify('late')).failures.length > 0, 'verify names the plaintext history');
      await assert.rejects(
        requiredRotated.rekey('late'),
        (error: unknown) =>
          error instanceof IntegrityError && /stored in plaintext, and KEEPER_REQUIRE_ENCRYPTION is on/.test(error.message),
        'rekey under the setting re-encrypts no plaintext',
      );

      const generation1 = await contentsAt(withOld, 'late', 1);
      await rotated.rekey('late');
      assert.equal((await requiredAfterRekey.verify('late')).failures.length, 0);
      assert.deepEqual(await contentsAt(requiredAfterRekey, 'late', 1), generation1, 'generation 1 restores once rekeyed');
    },
  );

  it('KEEPER_REQUIRE_ENCRYPTION: a new session is encrypted from its first backup', async () => {
    const required = new SessionStore(t.db, new KeyRing([oldKey]), { requireEncryption: true });
    const dir = await tempDir('fresh');
    await writeSession(dir, { preKeys: 3 });
    assert.equal((await backup(required, 'fresh', dir)).kind, 'success');
    assert.ok((await rows('fresh')).every((row) => row.key_id === 'old'));
    assert.deepEqual(await contentsAt(required, 'fresh'), await readTree(dir));
    assert.equal((await required.verify('fresh')).failures.length, 0);
  });

  it('a plaintext row placed before generation 1 is refused by verify and rekey, with or without KEEPER_REQUIRE_ENCRYPTION', async () => {
    const required = new SessionStore(t.db, new KeyRing([newKey, oldKey]), { requireEncryption: true });
    await threeGenerations('early', withOld); // encrypted from generation 1: its marker is 1
    const forged = Buffer.from('{"noiseKey":"attacker"}');
    for (const [from, to] of [
      [0, 1],
      [-1, 0],
    ] as const) {
      await query(t.url, 'DELETE FROM baileys_keeper.files WHERE session_id = $1 AND generation_from < 1', ['early']);
      await query(
        t.url,
        'INSERT INTO baileys_keeper.files (session_id, name, generation_from, generation_to, ' +
          'content, sha256, size, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)',
        ['early', 'creds.json', from, to, forged, createHash('sha256').update(forged).digest(), forged.length],
      );
      for (const store of [withOld, required]) {
        const verified = await store.verify('early');
        assert.deepEqual(
          verified.failures.map((f) => [f.name, Number(f.generationFrom)]),
          [['creds.json', from]],
          `${from}→${to}`,
        );
        assert.match(verified.failures[0]!.reason, new RegExp(`stored from generation ${from}, before the first one`));
      }
      for (const store of [rotated, required]) {
        await assert.rejects(
          store.rekey('early'),
          (error: unknown) => error instanceof IntegrityError && /before the first one/.test(error.message),
          `rekey ${from}→${to}`,
        );
      }
      const forgedRow = (await rows('early')).find((row) => Number(row.generation_from) === from)!;
      assert.equal(forgedRow.key_id, null, 'never re-encrypted');
    }
  });

  it(
    'a row with an empty range (the CHECK dropped by the table owner) ' +
      'is refused; rekey neither launders it nor repairs a damaged marker',
    async () => {
      const required = new SessionStore(t.db, new KeyRing([newKey, oldKey]), { requireEncryption: true });
      await threeGenerations('inverted', withOld);
      const forged = Buffer.from('{"forged":true}');
      const [constraint] = await query<{ conname: string }>(
        t.url,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'baileys_keeper.files'::regclass " +
          "AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%generation_to > generation_from%'",
      );
      assert.ok(constraint, 'the table has the range CHECK');
      await query(t.url, `ALTER TABLE baileys_keeper.files DROP CONSTRAINT ${constraint!.conname}`);
      try {
        await query(
          t.url,
          'INSERT INTO baileys_keeper.files (session_id, name, generation_from, generation_to, ' +
            'content, sha256, size, key_id) VALUES ($1, $2, 2, 1, $3, $4, $5, NULL)',
          ['inverted', 'creds.json', forged, createHash('sha256').update(forged).digest(), forged.length],
        );
        for (const store of [withOld, required]) {
          const verified = await store.verify('inverted');
          assert.ok(
            verified.failures.some((f) => f.name === 'creds.json' && /stored for generations 2 to 1, an empty range/.test(f.reason)),
            JSON.stringify(verified.failures),
          );
        }
        // With the marker removed too, rekey used to re-encrypt the row and then write a fresh, valid marker.
        await query(t.url, "UPDATE baileys_keeper.sessions SET encrypted_since = NULL WHERE session_id = 'inverted'");
        for (const store of [rotated, required]) {
          await assert.rejects(
            store.rekey('inverted'),
            (error: unknown) =>
              error instanceof IntegrityError &&
              /cannot rekey session inverted: the encryption marker of session inverted is missing/.test(error.message),
          );
        }
        const [marker] = await query<{ encrypted_since: string | null }>(
          t.url,
          "SELECT encrypted_since FROM baileys_keeper.sessions WHERE session_id = 'inverted'",
        );
        assert.equal(marker!.encrypted_since, null, 'the damaged marker is left for verify to report');
        assert.ok(
          (await rows('inverted')).some((row) => row.key_id === null),
          'the forged row was not re-encrypted',
        );
      } finally {
        await query(t.url, 'DELETE FROM baileys_keeper.files WHERE generation_to IS NOT NULL AND generation_to <= generation_from');
        await query(
          t.url,
          `ALTER TABLE baileys_keeper.files ADD CONSTRAINT ${constraint!.conname} ` +
            `CHECK (generation_to IS NULL OR generation_to > generation_from)`,
        );
      }
    },
  );

  it('two versions of one name visible in a generation (edited ranges) are refused by restore', async () => {
    await threeGenerations('twice', withOld);
    // pre-key-2 changed in generation 2: stretch its first version into generation 2 as well.
    await query(
      t.url,
      "UPDATE baileys_keeper.files SET generation_to = 3 WHERE session_id = 'twice' AND name = 'pre-key-2.json' AND generation_from = 1",
    );
    await assert.rejects(
      withOld.loadPoint('twice', { generation: 2 }),
      (error: unknown) => error instanceof IntegrityError && /"pre-key-2\.json": stored twice in this generation/.test(error.message),
    );
  });

  it('rekey never launders a tampered row: it stops at it, naming the file, and leaves what it did valid', async () => {
    await threeGenerations('launder', withOld);
    await query(
      t.url,
      'UPDATE baileys_keeper.files SET sha256 = set_byte(sha256, 0, get_byte(sha256, ' +
        "0) # 1) WHERE session_id = 'launder' AND name = 'pre-key-4.json'",
    );
    await assert.rejects(
      rotated.rekey('launder', 3),
      (error: unknown) => error instanceof IntegrityError && /"pre-key-4\.json": keyed hash mismatch/.test(error.message),
    );
    const after = await rows('launder');
    assert.ok(after.some((row) => row.key_id === 'new') && after.some((row) => row.key_id === 'old'), 'earlier batches committed');
    assert.equal(after.find((row) => row.name === 'pre-key-4.json')!.key_id, 'old', 'the tampered row was not re-encrypted');
    const failures = (await rotated.verify('launder')).failures;
    assert.deepEqual(
      failures.map((f) => f.name),
      ['pre-key-4.json'],
    );
  });

  describe('rows written before per-row keys (format 1)', () => {
    /** Generations 1 and 2 written in format 1 (as before per-row keys), 3 in format 2; the trees of each. */
    const mixedFormats = (sessionId: string) => historyBy(sessionId, [legacyOld, legacyOld, withOld]);

    const formatOne = async (sessionId: string) =>
      (await rows(sessionId)).filter((row) => row.key_id !== null && row.cipher_version === null);

    it('a history mixing format-1 and format-2 rows restores and verifies; unchanged format-1 rows are not rewritten', async () => {
      const { dir, trees } = await mixedFormats('formats');
      const stored = await rows('formats');
      const old = stored.filter((row) => row.cipher_version === null);
      assert.ok(old.length > 0 && old.every((row) => row.key_id === 'old' && Number(row.generation_from) <= 2));
      assert.ok(
        old.every((row) => row.content.length === NONCE_BYTES + row.size + TAG_BYTES),
        'format 1 as written before',
      );
      assert.deepEqual(
        stored.filter((row) => row.cipher_version === 2).map((row) => row.name),
        ['pre-key-3.json'],
        'the new backup wrote only the changed file, in format 2',
      );
      for (const [i, tree] of trees.entries()) assert.deepEqual(await contentsAt(withOld, 'formats', i + 1), tree, `generation ${i + 1}`);
      assert.deepEqual(await withOld.verify('formats'), { checked: stored.length, failures: [] });
      assert.equal((await backup(withOld, 'formats', dir)).kind, 'noop', 'the keyed hash of a format-1 row still detects no change');
      // The encryption marker of the format-1 writer keeps working: KEEPER_REQUIRE_ENCRYPTION reads both formats.
      const required = new SessionStore(t.db, new KeyRing([oldKey]), { requireEncryption: true });
      assert.equal((await required.verify('formats')).failures.length, 0);
      assert.deepEqual(await contentsAt(required, 'formats', 1), trees[0]);
    });

    it('a wrong key under the right id is detected in both formats; a missing key is named', async () => {
      await mixedFormats('formats-wrong');
      const impostor = new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32), 'old')]));
      const verified = await impostor.verify('formats-wrong');
      const byFormat = new Map((await rows('formats-wrong')).map((row) => [`${row.name}@${row.generation_from}`, row.cipher_version]));
      const failedFormats = new Set(
        verified.failures.filter((f) => f.name !== '').map((f) => byFormat.get(`${f.name}@${f.generationFrom}`)),
      );
      assert.deepEqual(failedFormats, new Set([null, 2]));
      assert.ok(verified.failures.some((f) => f.name === '' && /encryption marker .* does not verify/.test(f.reason)));
      for (const generation of [1, 3]) {
        await assert.rejects(impostor.loadPoint('formats-wrong', { generation }), /cannot be decrypted with key id old \(wrong key/);
      }
      await assert.rejects(onlyNew.loadPoint('formats-wrong', { generation: 1 }), /encrypted with key id old, which is not configured/);
    });

    it('rekey moves format-1 rows to format 2 under the same key: everything reads, nothing of format 1 is left', async () => {
      const { dir, trees } = await mixedFormats('formats-rekey');
      const before = await formatOne('formats-rekey');
      assert.ok(before.length > 0);
      const result = await withOld.rekey('formats-rekey', 3);
      assert.deepEqual(result, { rewritten: before.length, keyId: 'old' }, 'only the format-1 rows are rewritten');
      assert.deepEqual(await formatOne('formats-rekey'), []);
      const after = await rows('formats-rekey');
      assert.ok(after.every((row) => row.key_id === 'old' && row.cipher_version === 2));
      assert.ok(after.every((row) => row.content.length === SALT_BYTES + NONCE_BYTES + row.size + TAG_BYTES));
      for (const [i, tree] of trees.entries()) assert.deepEqual(await contentsAt(withOld, 'formats-rekey', i + 1), tree);
      assert.deepEqual(await withOld.verify('formats-rekey'), { checked: after.length, failures: [] });
      assert.deepEqual(await withOld.rekey('formats-rekey'), { rewritten: 0, keyId: 'old' }, 'a second rekey has nothing to do');
      assert.equal((await backup(withOld, 'formats-rekey', dir)).kind, 'noop');
    });

    it('rekey to a new key moves format-1 and format-2 rows of the old key alike; plaintext history too', async () => {
      const { trees } = await historyBy('formats-rotate', [plain, legacyOld, withOld], 4);
      const stored = await rows('formats-rotate');
      assert.deepEqual(new Set(stored.map((row) => `${row.key_id}/${row.cipher_version}`)), new Set(['null/null', 'old/null', 'old/2']));
      assert.deepEqual(await rotated.rekey('formats-rotate'), { rewritten: stored.length, keyId: 'new' });
      assert.ok((await rows('formats-rotate')).every((row) => row.key_id === 'new' && row.cipher_version === 2));
      for (const [i, tree] of trees.entries()) assert.deepEqual(await contentsAt(onlyNew, 'formats-rotate', i + 1), tree);
      assert.equal((await onlyNew.verify('formats-rotate')).failures.length, 0);
    });

    it('a changed cipher version makes a row fail, never read in another format', async () => {
      await mixedFormats('formats-edit');
      const edits = [
        ['cipher_version = 2', "name = 'creds.json'", /"creds\.json": cannot be decrypted with key id old/],
        [
          'cipher_version = NULL',
          "name = 'pre-key-3.json' AND generation_from = 3",
          /"pre-key-3\.json": cannot be decrypted with key id old/,
        ],
        [
          'cipher_version = 3',
          "name = 'pre-key-1.json'",
          /"pre-key-1\.json": sealed in cipher format 3, which this keeper version does not know/,
        ],
      ] as const;
      for (const [set, where, reason] of edits) {
        await query(t.url, `UPDATE baileys_keeper.files SET ${set} WHERE session_id = 'formats-edit' AND ${where}`);
        const failures = (await withOld.verify('formats-edit')).failures;
        assert.ok(
          failures.some((f) => reason.test(f.reason)),
          `${set}: ${JSON.stringify(failures)}`,
        );
      }
      await assert.rejects(
        withOld.rekey('formats-edit'),
        (error: unknown) => error instanceof IntegrityError && /cannot be decrypted|does not know/.test(error.message),
      );
    });
  });

  it('a format-2 row copied into another session (same name, same generation, same key) fails to decrypt there', async () => {
    const dirA = await tempDir('cross-a');
    await writeSession(dirA, { preKeys: 2 });
    const dirB = await tempDir('cross-b');
    await writeSession(dirB, { preKeys: 2 });
    await backup(withOld, 'cross-a', dirA);
    await backup(withOld, 'cross-b', dirB);
    const source = (await rows('cross-a')).find((row) => row.name === 'creds.json')!;
    assert.equal(source.cipher_version, 2);
    // Everything of the row but its session: content (salt included), keyed hash, size, key and format.
    await query(
      t.url,
      'UPDATE baileys_keeper.files SET content = $1, sha256 = $2, size = $3, key_id = $4, cipher_version = $5 ' +
        "WHERE session_id = 'cross-b' AND name = 'creds.json' AND generation_from = $6",
      [source.content, source.sha256, source.size, source.key_id, source.cipher_version, source.generation_from],
    );
    await assert.rejects(
      withOld.loadPoint('cross-b', {}),
      (error: unknown) => error instanceof IntegrityError && /"creds\.json": cannot be decrypted with key id old/.test(error.message),
    );
    assert.deepEqual(
      (await withOld.verify('cross-b')).failures.map((f) => f.name),
      ['creds.json'],
    );
    assert.deepEqual(await contentsAt(withOld, 'cross-a'), await readTree(dirA), 'the source session is untouched');
  });
});
