// Encryption primitives and the key settings (KEEPER_ENCRYPTION_KEY / _FILE / _KEYS).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { decrypt, encrypt, keyedHash, makeKey, NONCE_BYTES, TAG_BYTES } from '../../src/crypto.js';
import { UsageError } from '../../src/errors.js';
import { tempDir } from '../support/fs.js';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const row = { sessionId: 'bot', name: 'creds.json', generation: 7 };

describe('AES-256-GCM rows', () => {
  const key = makeKey(keyA);
  const plaintext = Buffer.from('{"noiseKey":"secret"}');

  it('round-trips, with a fresh nonce for every row (same plaintext, different ciphertext)', () => {
    const one = encrypt(key, row, plaintext);
    const two = encrypt(key, row, plaintext);
    assert.equal(one.length, NONCE_BYTES + plaintext.length + TAG_BYTES);
    assert.notDeepEqual(one, two);
    assert.ok(!one.includes(plaintext), 'the ciphertext does not contain the plaintext');
    assert.deepEqual(decrypt(key, row, one), plaintext);
    assert.deepEqual(decrypt(key, row, two), plaintext);
  });

  it('fails to decrypt when the row is moved to another session, name or generation, or under another key', () => {
    const sealed = encrypt(key, row, plaintext);
    assert.equal(decrypt(key, { ...row, sessionId: 'other' }, sealed), null);
    assert.equal(decrypt(key, { ...row, name: 'pre-key-1.json' }, sealed), null);
    assert.equal(decrypt(key, { ...row, generation: 8 }, sealed), null);
    assert.equal(decrypt(makeKey(keyB), row, sealed), null);
  });

  it('fails to decrypt when any single byte of the stored value is flipped, or it is cut short', () => {
    const sealed = encrypt(key, row, plaintext);
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i]! ^= 0x01;
      assert.equal(decrypt(key, row, bad), null, `flipped byte ${i}`);
    }
    assert.equal(decrypt(key, row, sealed.subarray(0, 10)), null);
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
