// Encryption primitives and the key settings (KEEPER_ENCRYPTION_KEY / _FILE / _KEYS).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import {
  CURRENT_CIPHER,
  cipherOf,
  KeyRing,
  keyedHash,
  LEGACY_CIPHER,
  makeKey,
  NONCE_BYTES,
  ROW_KEY_CIPHER,
  rowKey,
  SALT_BYTES,
  TAG_BYTES,
} from '../../src/crypto.js';
import { UsageError } from '../../src/errors.js';
import { tempDir } from '../support/fs.js';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const row = { sessionId: 'bot', name: 'creds.json', generation: 7 };

// Fixed inputs of the known-answer rows below: key bytes 0..31, row `row`, this plaintext.
const fixedKey = makeKey(Buffer.from(Array.from({ length: 32 }, (_, i) => i)));
const fixedPlaintext = Buffer.from('{"noiseKey":"secret"}');
/** A format-1 row as written by the keeper before format 2 existed (one content key per configured key). */
const FORMAT_1_ROW = Buffer.from(
  'bcdabeb4ecee96345098b27bcbc2e28f1c86e2417b5b61f40eaae45a2863347f187e422bceabae8acbba52917b853ee735',
  'hex',
);
/** A format-2 row (per-row key): pins the format, so rows written today stay readable by later versions. */
const FORMAT_2_ROW = Buffer.from(
  '7e254baf52aeb31b2b412b3407cdb6ed948e43aa9c410bdaf9253ff68759edaaa2fba9938093ad96b974bdf6d970e71af02677c7e10427197040f2414d309ad288',
  'hex',
);

describe('AES-256-GCM rows', () => {
  const key = makeKey(keyA);
  const plaintext = Buffer.from('{"noiseKey":"secret"}');

  it('new rows are written in format 2 (a key per row); each format is found by its stored version', () => {
    assert.equal(CURRENT_CIPHER, ROW_KEY_CIPHER);
    assert.equal(new KeyRing([key]).cipher, ROW_KEY_CIPHER);
    assert.equal(cipherOf(null), LEGACY_CIPHER, 'rows without a cipher version are format 1');
    assert.equal(cipherOf(2), ROW_KEY_CIPHER);
    assert.equal(cipherOf(3), null, 'a format this version does not know is not guessed');
  });

  for (const [label, cipher, overhead] of [
    ['format 2 (a key per row)', ROW_KEY_CIPHER, SALT_BYTES + NONCE_BYTES + TAG_BYTES],
    ['format 1 (one content key per configured key)', LEGACY_CIPHER, NONCE_BYTES + TAG_BYTES],
  ] as const) {
    describe(label, () => {
      it('round-trips, with fresh randomness for every row (same plaintext, different ciphertext)', () => {
        const one = cipher.seal(key, row, plaintext);
        const two = cipher.seal(key, row, plaintext);
        assert.equal(one.length, overhead + plaintext.length);
        assert.notDeepEqual(one, two);
        assert.ok(!one.includes(plaintext), 'the ciphertext does not contain the plaintext');
        assert.deepEqual(cipher.open(key, row, one), plaintext);
        assert.deepEqual(cipher.open(key, row, two), plaintext);
      });

      it('fails to decrypt when the row is moved to another session, name or generation, or under another key', () => {
        const sealed = cipher.seal(key, row, plaintext);
        assert.equal(cipher.open(key, { ...row, sessionId: 'other' }, sealed), null);
        assert.equal(cipher.open(key, { ...row, name: 'pre-key-1.json' }, sealed), null);
        assert.equal(cipher.open(key, { ...row, generation: 8 }, sealed), null);
        assert.equal(cipher.open(makeKey(keyB), row, sealed), null);
      });

      it('fails to decrypt when any single byte of the stored value is flipped, or it is cut short', () => {
        const sealed = cipher.seal(key, row, plaintext);
        for (let i = 0; i < sealed.length; i++) {
          const bad = Buffer.from(sealed);
          bad[i]! ^= 0x01;
          assert.equal(cipher.open(key, row, bad), null, `flipped byte ${i}`);
        }
        for (const length of [0, 10, overhead - 1])
          assert.equal(cipher.open(key, row, sealed.subarray(0, length)), null, `${length} bytes`);
      });
    });
  }

  it('a row read in the other format does not decrypt (the stored version cannot be changed to downgrade a row)', () => {
    assert.equal(LEGACY_CIPHER.open(key, row, ROW_KEY_CIPHER.seal(key, row, plaintext)), null);
    assert.equal(ROW_KEY_CIPHER.open(key, row, LEGACY_CIPHER.seal(key, row, plaintext)), null);
  });

  it('old-format decrypt: a format-1 row written before per-row keys existed still decrypts, and only in format 1', () => {
    assert.equal(fixedKey.id, 'fp-367328c3aef0', 'the key ids of existing rows do not change either');
    assert.deepEqual(LEGACY_CIPHER.open(fixedKey, row, FORMAT_1_ROW), fixedPlaintext);
    assert.equal(ROW_KEY_CIPHER.open(fixedKey, row, FORMAT_1_ROW), null);
    assert.equal(LEGACY_CIPHER.open(fixedKey, { ...row, sessionId: 'other' }, FORMAT_1_ROW), null);
  });

  it('a format-2 row written by this version decrypts with its fixed inputs (the format is stable)', () => {
    assert.deepEqual(ROW_KEY_CIPHER.open(fixedKey, row, FORMAT_2_ROW), fixedPlaintext);
    assert.equal(LEGACY_CIPHER.open(fixedKey, row, FORMAT_2_ROW), null);
  });

  it('keys the change-detection hash: it differs from the plaintext sha256, per key, per name and per session', () => {
    const hash = keyedHash(key, 'bot', 'a.json', plaintext);
    assert.equal(hash.length, 32);
    assert.notDeepEqual(hash, keyedHash(makeKey(keyB), 'bot', 'a.json', plaintext));
    assert.notDeepEqual(hash, keyedHash(key, 'bot', 'b.json', plaintext));
    assert.notDeepEqual(hash, keyedHash(key, 'other', 'a.json', plaintext));
    assert.deepEqual(hash, keyedHash(makeKey(keyA), 'bot', 'a.json', plaintext), 'deterministic for the same key');
  });

  it('derives a stable fingerprint id that does not reveal the key', () => {
    assert.equal(makeKey(keyA).id, makeKey(keyA).id);
    assert.notEqual(makeKey(keyA).id, makeKey(keyB).id);
    assert.match(makeKey(keyA).id, /^fp-[0-9a-f]{12}$/);
    assert.ok(!keyA.toString('hex').includes(makeKey(keyA).id.slice(3)));
  });
});

describe('per-row key derivation (format 2)', () => {
  const key = makeKey(keyA);
  const salt = randomBytes(SALT_BYTES);

  it('is deterministic in (key, session, salt): the same inputs give the same 32-byte key', () => {
    const derived = rowKey(key, 'bot', salt);
    assert.equal(derived.length, 32);
    assert.deepEqual(derived, rowKey(makeKey(keyA), 'bot', Buffer.from(salt)));
  });

  it('gives distinct sessions, salts and configured keys distinct keys, none of them a subkey used elsewhere', () => {
    const derived = rowKey(key, 'bot', salt);
    const others = [
      rowKey(key, 'bot2', salt),
      rowKey(key, 'bo', salt),
      rowKey(key, 'bot', randomBytes(SALT_BYTES)),
      rowKey(makeKey(keyB), 'bot', salt),
      key.legacyContentKey,
      key.rowKeySeed,
      key.hashKey,
    ];
    for (const [i, other] of others.entries()) assert.notDeepEqual(derived, other, `input ${i}`);
    assert.equal(new Set([derived, ...others].map((k) => k.toString('hex'))).size, others.length + 1);
  });

  it('stores the salt in the row: it is the first SALT_BYTES of the content and decides the key', () => {
    const sealed = ROW_KEY_CIPHER.seal(key, row, Buffer.from('x'));
    const again = ROW_KEY_CIPHER.seal(key, row, Buffer.from('x'));
    assert.notDeepEqual(sealed.subarray(0, SALT_BYTES), again.subarray(0, SALT_BYTES), 'a fresh salt per row');
    const swappedSalt = Buffer.concat([again.subarray(0, SALT_BYTES), sealed.subarray(SALT_BYTES)]);
    assert.equal(ROW_KEY_CIPHER.open(key, row, swappedSalt), null);
  });
});

describe('encryption key settings', () => {
  const b64 = keyA.toString('base64');
  const noKeyInMessage = (error: unknown): boolean => {
    const message = (error as Error).message;
    return !message.includes(b64) && !message.includes(b64.slice(0, 20)) && !message.includes(keyA.toString('hex').slice(0, 20));
  };

  it('has no key by default', () => {
    assert.equal(loadConfig('backup', [], {}).encryption, null);
  });

  it('KEEPER_REQUIRE_ENCRYPTION: off by default; on, it needs a key for every command that reads or writes contents', () => {
    assert.equal(loadConfig('restore', [], { KEEPER_ENCRYPTION_KEY: b64 }).requireEncryption, false);
    assert.equal(loadConfig('restore', [], { KEEPER_ENCRYPTION_KEY: b64, KEEPER_REQUIRE_ENCRYPTION: 'yes' }).requireEncryption, true);
    for (const command of ['restore', 'sidecar', 'run', 'backup', 'export', 'import', 'import-legacy', 'verify'] as const) {
      const argv = command === 'run' ? ['--', 'node', 'bot.js'] : [];
      assert.throws(
        () => loadConfig(command, argv, { KEEPER_REQUIRE_ENCRYPTION: 'true' }),
        (error: unknown) => error instanceof UsageError && /no encryption key is configured/.test(error.message),
        command,
      );
    }
    for (const command of ['status', 'history', 'delete', 'migrate'] as const) {
      assert.equal(
        loadConfig(command, [], { KEEPER_REQUIRE_ENCRYPTION: 'true' }).requireEncryption,
        true,
        `${command} touches no contents`,
      );
    }
    assert.throws(() => loadConfig('restore', [], { KEEPER_ENCRYPTION_KEY: b64, KEEPER_REQUIRE_ENCRYPTION: 'maybe' }), UsageError);
    // Set but empty (a template that failed to expand) must not quietly mean "off".
    assert.throws(
      () => loadConfig('restore', [], { KEEPER_ENCRYPTION_KEY: b64, KEEPER_REQUIRE_ENCRYPTION: '' }),
      /KEEPER_REQUIRE_ENCRYPTION is set but empty/,
    );
  });

  it('KEEPER_ENCRYPTION_KEY: base64 of 32 bytes, standard or URL-safe, padding optional; its id is its fingerprint', () => {
    const ring = loadConfig('backup', [], { KEEPER_ENCRYPTION_KEY: b64 }).encryption!;
    assert.equal(ring.writer.id, makeKey(keyA).fingerprint);
    const urlSafe = loadConfig('backup', [], { KEEPER_ENCRYPTION_KEY: keyA.toString('base64url') }).encryption!;
    assert.equal(urlSafe.writer.id, ring.writer.id);
  });

  it('KEEPER_ENCRYPTION_KEY_FILE: a mounted secret with a trailing newline', async () => {
    const dir = await tempDir('key');
    const file = path.join(dir, 'key');
    await writeFile(file, `${b64}\n`, { mode: 0o600 });
    assert.equal(loadConfig('restore', [], { KEEPER_ENCRYPTION_KEY_FILE: file }).encryption!.writer.id, makeKey(keyA).id);
    assert.throws(
      () => loadConfig('restore', [], { KEEPER_ENCRYPTION_KEY_FILE: path.join(dir, 'missing') }),
      (error: unknown) =>
        error instanceof UsageError && /cannot read KEEPER_ENCRYPTION_KEY_FILE .*missing \(ENOENT\)/.test((error as Error).message),
    );
  });

  it('KEEPER_ENCRYPTION_KEYS: the first writes, every one decrypts, found by id or by fingerprint', () => {
    const ring = loadConfig('rekey', [], { KEEPER_ENCRYPTION_KEYS: ` new:${keyB.toString('base64')} , old:${b64}` }).encryption!;
    assert.equal(ring.writer.id, 'new');
    assert.equal(ring.find('old')?.fingerprint, makeKey(keyA).fingerprint);
    assert.equal(ring.find(makeKey(keyA).fingerprint)?.id, 'old', 'rows written with the single-key form stay readable');
    assert.equal(ring.find('nope'), null);
  });

  for (const [label, env, pattern] of [
    [
      'a short key',
      { KEEPER_ENCRYPTION_KEY: randomBytes(16).toString('base64') },
      /KEEPER_ENCRYPTION_KEY is not a valid encryption key \(it decodes to 16 bytes, not 32\): use 32 random bytes in base64/,
    ],
    ['hex instead of base64 (64 chars decode to 48 bytes)', { KEEPER_ENCRYPTION_KEY: keyA.toString('hex') }, /decodes to 48 bytes/],
    ['not base64', { KEEPER_ENCRYPTION_KEY: `${b64.slice(0, 40)}!!!!` }, /it is not base64/],
    ['two forms at once', { KEEPER_ENCRYPTION_KEY: b64, KEEPER_ENCRYPTION_KEYS: `a:${b64}` }, /set only one/],
    ['a KEYS entry without id', { KEEPER_ENCRYPTION_KEYS: b64 }, /entry 1 is not ID:BASE64/],
    ['a bad id', { KEEPER_ENCRYPTION_KEYS: `a b:${b64}` }, /entry 1 is not ID:BASE64/],
    ['a duplicate id', { KEEPER_ENCRYPTION_KEYS: `a:${b64},a:${keyB.toString('base64')}` }, /key id a appears twice/],
    ['a bad second key', { KEEPER_ENCRYPTION_KEYS: `a:${b64},b:${b64.slice(0, 30)}` }, /entry 2 \(id b\) is not a valid encryption key/],
  ] as const) {
    it(`refuses ${label} with a usage error that does not echo the key`, () => {
      assert.throws(
        () => loadConfig('backup', [], env),
        (error: unknown) => error instanceof UsageError && pattern.test((error as Error).message) && noKeyInMessage(error),
      );
    });
  }

  it('a key variable that is set but empty, or a key file that is empty, is a usage error, never plaintext storage', async () => {
    const emptyFile = path.join(await tempDir('empty-key'), 'key');
    await writeFile(emptyFile, '\n', { mode: 0o600 });
    for (const [env, pattern] of [
      [{ KEEPER_ENCRYPTION_KEY: '' }, /KEEPER_ENCRYPTION_KEY is set but empty: .*or unset it/],
      [{ KEEPER_ENCRYPTION_KEYS: ' ' }, /KEEPER_ENCRYPTION_KEYS is set but empty/],
      [{ KEEPER_ENCRYPTION_KEY_FILE: '' }, /KEEPER_ENCRYPTION_KEY_FILE is set but empty/],
      [{ KEEPER_ENCRYPTION_KEY_FILE: emptyFile }, /the key in KEEPER_ENCRYPTION_KEY_FILE .* is not a valid encryption key \(it is empty\)/],
    ] as const) {
      for (const command of ['backup', 'sidecar', 'run', 'restore'] as const) {
        const argv = command === 'run' ? ['--', 'node', 'bot.js'] : [];
        assert.throws(
          () => loadConfig(command, argv, env),
          (error: unknown) => error instanceof UsageError && error.exitCode === 64 && pattern.test(error.message),
          `${command} ${JSON.stringify(env)}`,
        );
      }
    }
  });

  it('rekey needs a key', () => {
    assert.throws(
      () => loadConfig('rekey', [], {}),
      (error: unknown) => error instanceof UsageError && /no key is configured/.test((error as Error).message),
    );
  });
});
