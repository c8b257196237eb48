import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initAuthCreds } from '@whiskeysockets/baileys';
import { BufferJSON } from '@whiskeysockets/baileys';
import { maskJid, parseCreds, tornReason } from '../../src/creds.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArchive, packArchive } from '../../src/archive.js';
import { IntegrityError } from '../../src/errors.js';
import { incomingFileProblem, MAX_INCOMING_FILES, SnapshotBuilder } from '../../src/incoming.js';
import { invalidNameReason } from '../../src/names.js';
import { REPO } from '../../harness/paths.js';

const credsText = (extra: Record<string, unknown> = {}) => JSON.stringify({ ...initAuthCreds(), ...extra }, BufferJSON.replacer);

describe('file names', () => {
  for (const good of [
    'creds.json',
    'pre-key-1.json',
    'session-5511999.0.json',
    'app-state-sync-key-AAAA.json',
    'lid-mapping-1_reverse.json',
    'x'.repeat(255),
  ]) {
    it(`accepts ${good.slice(0, 40)}`, () => assert.equal(invalidNameReason(good), null));
  }
  for (const bad of [
    '',
    '.',
    '..',
    '../creds.json',
    'a/b.json',
    'a\\b.json',
    '/etc/passwd',
    'nul\0.json',
    'tab\t.json',
    '.hidden',
    'x.tmp',
    'é'.repeat(128),
    '\ud800.json',
    '\udc00.json',
    'pre-key-\udbff',
    '\udfff\ud800.json',
    'emoji-\ud83d.json',
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.notEqual(invalidNameReason(bad), null));
  }
  it('accepts a well-formed surrogate pair, and names like Object.prototype members', () => {
    for (const name of ['\ud83d\ude00.json', '__proto__', 'constructor', 'toString', 'hasOwnProperty'])
      assert.equal(invalidNameReason(name), null, name);
  });
});

describe('one name rule for the API, archives and the disk', () => {
  it('refuses an unpaired surrogate on every incoming path, and bounds the files of one generation', async () => {
    assert.match(incomingFileProblem('\ud800.json', Buffer.from('{}')) ?? '', /well-formed Unicode/);
    const builder = new SnapshotBuilder();
    assert.match(builder.add('\udc00.json', Buffer.from('{}')) ?? '', /well-formed Unicode/);
    for (let i = 0; i < MAX_INCOMING_FILES; i++) assert.equal(builder.add(`f${i}`, Buffer.alloc(0)), null);
    assert.match(builder.add('one-more', Buffer.alloc(0)) ?? '', new RegExp(`more than ${MAX_INCOMING_FILES} files`));
    // An archive carries names as bytes: whatever it holds decodes to well-formed text, and is then checked.
    const archive = await packArchive([{ name: 'ok.json', content: Buffer.from('{}') }], new Date(0));
    assert.deepEqual([...(await parseArchive(archive)).files.keys()], ['ok.json']);
    // A dotfile is left out of an archive's import as out of a directory's backup, never stored.
    const withDotfile = await packArchive(
      [
        { name: 'ok.json', content: Buffer.from('{}') },
        { name: '.hidden', content: Buffer.from('x') },
      ],
      new Date(0),
    );
    assert.deepEqual([...(await parseArchive(withDotfile)).files.keys()], ['ok.json']);
    await assert.rejects(
      parseArchive(await packArchive([{ name: 'bad\u0001.json', content: Buffer.from('{}') }], new Date(0))),
      IntegrityError,
    );
  });

  it('every reader of names (disk, watcher, archive, API, restore, stored rows) imports the rule from names.ts', async () => {
    for (const file of ['snapshot.ts', 'watcher.ts', 'archive.ts', 'incoming.ts', 'restore.ts', 'store/codec/rows.ts']) {
      const source = await readFile(path.join(REPO, 'src', file), 'utf8');
      assert.match(source, /import \{[^}]*\binvalidNameReason\b[^}]*\} from '(\.\/|(\.\.\/)+)names\.js'/, file);
    }
    const api = await readFile(path.join(REPO, 'src', 'api.ts'), 'utf8');
    assert.match(api, /SnapshotBuilder/, 'the API checks names through the incoming snapshot builder');
    const archive = await readFile(path.join(REPO, 'src', 'archive.ts'), 'utf8');
    assert.match(archive, /MAX_ARCHIVE_ENTRIES = MAX_INCOMING_FILES/, 'archives and API bodies share one file-count limit');
  });
});

describe('torn writes', () => {
  it('accepts a real creds object and reads its registration', () => {
    assert.equal(tornReason('creds.json', Buffer.from(credsText())), null);
    assert.equal(parseCreds(credsText())?.registeredJid, null);
    assert.equal(parseCreds(credsText({ me: { id: '5511987654321:7@s.whatsapp.net' } }))?.registeredJid, '5511987654321:7@s.whatsapp.net');
  });

  it('rejects empty, truncated and foreign creds', () => {
    const text = credsText();
    assert.match(tornReason('creds.json', Buffer.alloc(0))!, /empty/);
    assert.match(tornReason('creds.json', Buffer.from(text.slice(0, text.length / 2)))!, /creds/);
    assert.match(tornReason('creds.json', Buffer.from('{"hello":"world"}'))!, /creds/);
    assert.match(tornReason('creds.json', Buffer.from('[]'))!, /creds/);
  });

  it('rejects empty or truncated key files and leaves non-JSON files alone', () => {
    assert.match(tornReason('pre-key-1.json', Buffer.alloc(0))!, /empty/);
    assert.match(tornReason('pre-key-1.json', Buffer.from('{"private":{"type":"Buf'))!, /JSON/);
    assert.equal(tornReason('pre-key-1.json', Buffer.from('{"a":1}')), null);
    assert.equal(tornReason('notes.txt', Buffer.alloc(0)), null);
  });
});

describe('maskJid', () => {
  it('keeps only the ends of a phone number', () => {
    assert.equal(maskJid('5511999999999:12@s.whatsapp.net'), '5511*****9999');
    assert.equal(maskJid('12345678@s.whatsapp.net'), '12****78');
    assert.equal(maskJid('123@s.whatsapp.net'), '***');
  });
});
