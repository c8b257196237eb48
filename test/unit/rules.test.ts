import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initAuthCreds } from '@whiskeysockets/baileys';
import { BufferJSON } from '@whiskeysockets/baileys';
import { maskJid, parseCreds, tornReason } from '../../src/creds.js';
import { invalidNameReason } from '../../src/names.js';

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
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.notEqual(invalidNameReason(bad), null));
  }
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
