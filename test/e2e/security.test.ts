// Encryption, tamper detection and rotation through the real CLI: what verify and restore say and
// exit with when a byte in the database is flipped or the key is missing, and `rekey`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { makeKey } from '../../src/crypto.js';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { startService, waitFor } from '../../harness/sidecar.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';

const key = randomBytes(32);
const keyB64 = key.toString('base64');
const keyId = makeKey(key).fingerprint;

describe('encryption and tamper detection through the CLI', async () => {
  const url = await freshDatabase('security');
  const keyed = (session: string, extra: Record<string, string> = {}) =>
    cliEnv(url, { KEEPER_SESSION_ID: session, KEEPER_ENCRYPTION_KEY: keyB64, ...extra });

  /** Three encrypted generations of `session`: pre-key-2 changes in generation 2, pre-key-3 in 3. Returns the directory. */
  async function threeGenerations(session: string): Promise<{ dir: string; trees: Map<string, string>[] }> {
    const dir = await tempDir(session);
    const auth = await writeSession(dir, { preKeys: 5 });
    const trees: Map<string, string>[] = [];
    for (const id of [null, '2', '3']) {
      if (id) await auth.state.keys.set({ 'pre-key': { [id]: Curve.generateKeyPair() } });
      const result = await runCli(['backup', '--dir', dir], { env: keyed(session) });
      assert.equal(result.code, 0, result.stderr);
      trees.push(await readTree(dir));
    }
    return { dir, trees };
  }

  const flip = (column: string, session: string, name: string, generation: number) =>
    query(
      url,
      `UPDATE baileys_keeper.files SET ${column} = set_byte(${column}, 20, ` +
        `get_byte(${column}, 20) # 1) WHERE session_id = $1 AND name = $2 AND generation_from = $3`,
      [session, name, generation],
    );

  it('a flipped content byte: verify names the file (exit 4); restore refuses and names the older generation, which restores', async () => {
    const { trees } = await threeGenerations('flip');
    await flip('content', 'flip', 'pre-key-3.json', 3);
    const verify = await runCli(['verify'], { env: keyed('flip') });
    assert.equal(verify.code, 4);
    assert.match(
      verify.stdout,
      /^FAILED {2}"pre-key-3\.json": cannot be decrypted with key id fp-[0-9a-f]{12} .*\(stored at generation 3\)$/m,
    );

    const target = path.join(await tempDir('flip-target'), 'auth');
    const refused = await runCli(['restore', '--dir', target], { env: keyed('flip') });
    assert.equal(refused.code, 4);
    assert.match(
      messages(refused.stdout),
      /generation 3 of session flip failed its integrity check: "pre-key-3\.json".*Nothing was written\. Generation 2 \(.*\) verifies: restore it with --generation 2/,
    );
    assert.deepEqual(await readdir(target).catch(() => []), [], 'nothing was written');
    const older = await runCli(['restore', '--dir', target, '--generation', '2'], { env: keyed('flip') });
    assert.equal(older.code, 0, older.stdout);
    assert.deepEqual(await readTree(target), trees[1]);
  });

  it('a flipped byte in the stored hash or the file name is named by verify (exit 4)', async () => {
    await threeGenerations('names');
    await flip('sha256', 'names', 'pre-key-2.json', 2);
    await query(url, "UPDATE baileys_keeper.files SET name = 'pre-key-5.jsom' WHERE session_id = 'names' AND name = 'pre-key-5.json'");
    const verify = await runCli(['verify', '--json'], { env: keyed('names') });
    assert.equal(verify.code, 4);
    const failures = (JSON.parse(verify.stdout) as { failures: { name: string; generation: number; reason: string }[] }).failures;
    assert.deepEqual(
      failures.map((f) => [f.name, f.generation]),
      [
        ['pre-key-2.json', 2],
        ['pre-key-5.jsom', 1],
      ],
    );
    assert.match(failures[0]!.reason, /keyed hash mismatch/);
    assert.match(failures[1]!.reason, /cannot be decrypted/);
  });

  it('a plaintext creds.json forged into the encrypted session: verify names it, restore writes nothing, rekey refuses (all exit 4)', async () => {
    await threeGenerations('forged');
    const forged = Buffer.from('{"attacker":"creds"}');
    await query(
      url,
      `UPDATE baileys_keeper.files SET key_id = NULL, cipher_version = NULL, content = $1, sha256 = sha256($1), size = octet_length($1)
        WHERE session_id = 'forged' AND name = 'creds.json' AND generation_to IS NULL`,
      [forged],
    );
    const verify = await runCli(['verify'], { env: keyed('forged') });
    assert.equal(verify.code, 4, verify.stdout);
    assert.match(
      verify.stdout,
      /^FAILED {2}"creds\.json": stored in plaintext where session forged is encrypted since generation 1.*\(stored at generation 1\)$/m,
    );

    const target = path.join(await tempDir('forged-target'), 'auth');
    const restore = await runCli(['restore', '--dir', target], { env: keyed('forged') });
    assert.equal(restore.code, 4, restore.stdout);
    assert.match(
      messages(restore.stdout),
      /generation 3 of session forged failed its integrity check: "creds\.json": stored in plaintext.*Nothing was written/,
    );
    assert.deepEqual(await readdir(target).catch(() => []), [], 'nothing was written');

    const rekey = await runCli(['rekey'], {
      env: cliEnv(url, {
        KEEPER_SESSION_ID: 'forged',
        KEEPER_ENCRYPTION_KEYS: `next:${randomBytes(32).toString('base64')},old:${keyB64}`,
      }),
    });
    assert.equal(rekey.code, 4, rekey.stdout);
    assert.match(messages(rekey.stdout + rekey.stderr), /cannot rekey session forged: .*"creds\.json": stored in plaintext/);
    const [row] = await query<{ key_id: string | null }>(
      url,
      "SELECT key_id FROM baileys_keeper.files WHERE session_id = 'forged' AND name = 'creds.json'",
    );
    assert.equal(row!.key_id, null, 'not laundered into an encrypted row');
  });

  it('says at start whether encryption is on (with the key id) or off; an empty key variable exits 64 instead of storing plaintext', async () => {
    const dir = await tempDir('announce');
    await writeSession(dir, { preKeys: 1 });
    const on = await runCli(['backup', '--dir', dir], { env: keyed('announce') });
    assert.equal(on.code, 0, on.stderr);
    assert.match(messages(on.stderr), new RegExp(`encryption at rest is on: new rows are encrypted with key id ${keyId}`));
    const off = await runCli(['backup', '--dir', dir], { env: cliEnv(url, { KEEPER_SESSION_ID: 'announce-plain' }) });
    assert.equal(off.code, 0, off.stderr);
    assert.match(messages(off.stderr), /encryption at rest is off: file contents are stored in plaintext/);
    const empty = await runCli(['backup', '--dir', dir], {
      env: cliEnv(url, { KEEPER_SESSION_ID: 'announce-empty', KEEPER_ENCRYPTION_KEY: '' }),
    });
    assert.equal(empty.code, 64, empty.stderr);
    assert.match(messages(empty.stderr), /KEEPER_ENCRYPTION_KEY is set but empty/);
    const [stored] = await query<{ n: string }>(
      url,
      "SELECT count(*) AS n FROM baileys_keeper.sessions WHERE session_id = 'announce-empty'",
    );
    assert.equal(stored!.n, '0', 'nothing was stored');
  });

  it(
    'a sidecar without the key of the stored rows reports an integrity ' +
      'failure naming the key id, not a database error, and keeps running',
    async () => {
      const { dir } = await threeGenerations('sidecar-nokey');
      const other = randomBytes(32).toString('base64');
      const service = await startService(
        ['sidecar', '--dir', dir, '--listen', '127.0.0.1:0'],
        cliEnv(url, {
          KEEPER_SESSION_ID: 'sidecar-nokey',
          KEEPER_ENCRYPTION_KEY: other,
          KEEPER_DEBOUNCE_MS: '100',
          KEEPER_MAX_DELAY_MS: '500',
        }),
      );
      try {
        await waitFor(
          async () => ((await service.metric('baileys_keeper_backups_total{result="failure"}')) >= 1 ? true : null),
          30_000,
          () => service.output.join('\n'),
          service.exited,
        );
        assert.equal(await service.metric('baileys_keeper_database_errors_total'), 0);
        const text = messages(service.output.join('\n'));
        assert.match(
          text,
          new RegExp(`backup not stored: session sidecar-nokey is encrypted with key id ${keyId}, which is not configured`),
        );
        assert.doesNotMatch(text, /database error; retrying/);
        assert.equal((await service.get('/healthz')).status, 200, 'still running');
      } finally {
        await service.stop();
      }
    },
  );

  it(
    'KEEPER_REQUIRE_ENCRYPTION: without a key it is a usage error (64); a session ' +
      'stripped to plaintext is refused by restore and verify (4), writing nothing',
    async () => {
      const { dir } = await threeGenerations('stripped');
      const required = keyed('stripped', { KEEPER_REQUIRE_ENCRYPTION: 'true' });
      const noKey = await runCli(['restore', '--dir', path.join(await tempDir('nokey'), 'auth')], {
        env: cliEnv(url, { KEEPER_SESSION_ID: 'stripped', KEEPER_REQUIRE_ENCRYPTION: '1' }),
      });
      assert.equal(noKey.code, 64, noKey.stderr);
      assert.match(
        messages(noKey.stderr),
        /KEEPER_REQUIRE_ENCRYPTION is on but no encryption key is configured: set KEEPER_ENCRYPTION_KEY/,
      );
      const notBoolean = await runCli(['verify'], { env: keyed('stripped', { KEEPER_REQUIRE_ENCRYPTION: 'always' }) });
      assert.equal(notBoolean.code, 64, notBoolean.stderr);
      const announced = await runCli(['backup', '--dir', dir], { env: required });
      assert.equal(announced.code, 0, announced.stderr);
      assert.match(messages(announced.stderr), /plaintext stored rows are refused \(KEEPER_REQUIRE_ENCRYPTION\)/);

      // Someone with database access removes the marker and replaces every row with plaintext of their own.
      await query(
        url,
        'UPDATE baileys_keeper.sessions SET encrypted_since = NULL, encrypted_since_key_id ' +
          "= NULL, encrypted_since_mac = NULL WHERE session_id = 'stripped'",
      );
      await query(
        url,
        "UPDATE baileys_keeper.files SET key_id = NULL, cipher_version = NULL, content = convert_to('{\"forged\":true}', 'UTF8'), " +
          "sha256 = sha256(convert_to('{\"forged\":true}', 'UTF8')), size = 15 WHERE session_id = 'stripped'",
      );

      const verify = await runCli(['verify'], { env: required });
      assert.equal(verify.code, 4, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /^FAILED {2}"creds\.json": stored in plaintext, and KEEPER_REQUIRE_ENCRYPTION is on/m);
      const target = path.join(await tempDir('stripped-target'), 'auth');
      const restore = await runCli(['restore', '--dir', target], { env: required });
      assert.equal(restore.code, 4, restore.stdout + restore.stderr);
      assert.match(
        messages(restore.stdout + restore.stderr),
        /"creds\.json": stored in plaintext, and KEEPER_REQUIRE_ENCRYPTION is on.*Nothing was written/,
      );
      assert.deepEqual(await readdir(target).catch(() => []), []);
      // Without the setting the forgery restores: the limit KEEPER_REQUIRE_ENCRYPTION closes.
      const unguarded = await runCli(['restore', '--dir', target, '--force'], { env: keyed('stripped') });
      assert.equal(unguarded.code, 0, unguarded.stdout + unguarded.stderr);
      assert.equal((await readTree(target)).get('creds.json'), '{"forged":true}');
    },
  );

  it('restore without the key, or with another key, exits 4 naming the key id it needs and writes nothing', async () => {
    const { dir } = await threeGenerations('nokey');
    for (const env of [
      cliEnv(url, { KEEPER_SESSION_ID: 'nokey' }),
      cliEnv(url, { KEEPER_SESSION_ID: 'nokey', KEEPER_ENCRYPTION_KEY: randomBytes(32).toString('base64') }),
    ]) {
      const target = path.join(await tempDir('nokey-target'), 'auth');
      const result = await runCli(['restore', '--dir', target], { env });
      assert.equal(result.code, 4, result.stdout);
      assert.match(
        messages(result.stdout),
        new RegExp(`generation 3 of session nokey is encrypted with key id ${keyId}, which is not configured .*nothing was written`),
      );
      assert.deepEqual(await readdir(target).catch(() => []), []);
    }
    const backup = await runCli(['backup', '--dir', dir], { env: cliEnv(url, { KEEPER_SESSION_ID: 'nokey' }) });
    assert.equal(backup.code, 4, 'no silent switch to plaintext');
  });

  it('rekey moves the whole history to the newest key; then only that key is needed', async () => {
    const { trees } = await threeGenerations('rotate');
    const next = randomBytes(32).toString('base64');
    // The single key's rows carry its fingerprint id; listed under any id it still decrypts them.
    const both = cliEnv(url, { KEEPER_SESSION_ID: 'rotate', KEEPER_ENCRYPTION_KEYS: `2027:${next},2026:${keyB64}` });
    const [stored] = await query<{ n: string }>(url, "SELECT count(*) AS n FROM baileys_keeper.files WHERE session_id = 'rotate'");
    const rekey = await runCli(['rekey', '--json'], { env: both });
    assert.equal(rekey.code, 0, rekey.stderr);
    assert.deepEqual(JSON.parse(rekey.stdout), { session_id: 'rotate', key_id: '2027', rewritten: Number(stored!.n) });
    const onlyNext = cliEnv(url, { KEEPER_SESSION_ID: 'rotate', KEEPER_ENCRYPTION_KEYS: `2027:${next}` });
    assert.equal((await runCli(['verify'], { env: onlyNext })).code, 0);
    for (const generation of [1, 2, 3]) {
      const target = await tempDir('rotate-target');
      const restore = await runCli(['restore', '--dir', target, '--generation', String(generation)], { env: onlyNext });
      assert.equal(restore.code, 0, restore.stdout);
      assert.deepEqual(await readTree(target), trees[generation - 1]);
    }
    const rows = await query<{ key_id: string }>(url, "SELECT DISTINCT key_id FROM baileys_keeper.files WHERE session_id = 'rotate'");
    assert.deepEqual(rows, [{ key_id: '2027' }]);
  });
});
