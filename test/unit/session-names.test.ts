// The folder → session id rule of --sessions-dir (src/names.ts, docs/many-sessions.md "Folder names"):
// one-to-one over arbitrary names, stable across versions (pinned values), always a valid session id,
// the identity for names that already are one, and undone by restore's side (folderFor) for safe names only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { folderFor, isValidSessionId, sessionIdFor } from '../../src/names.js';

const RUNS = 2_000;

/** Names a platform really uses, the pieces naive rules confuse, and arbitrary Unicode of every length. */
const nameArb = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
  fc.stringMatching(/^[A-Za-z0-9._-]{1,110}$/),
  fc
    .array(
      fc.constantFrom('a', 'b', ' ', '_', '.', '-', '+', '@', 'João', 'Jo', '_C3_A3', '_20', '_5F', '%20', 'ã', 'a\u0303', '😀', '\n'),
      {
        minLength: 1,
        maxLength: 8,
      },
    )
    .map((parts) => parts.join('')),
  fc.string({ unit: 'grapheme', minLength: 60, maxLength: 130 }),
);
const prefixArb = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{0,12}$/), fc.stringMatching(/^[A-Za-z0-9._-]{50,70}$/));

/** What a naive rule would confuse `name` with: escapes written literally, and literal escapes decoded. */
const lookAlikes = (name: string): string[] => [
  name.replaceAll(' ', '_20'),
  name.replaceAll('_20', ' '),
  name.replaceAll('_', ' '),
  name.replaceAll('.', '_2E'),
  name.replaceAll('_', '.'),
  Buffer.from(name, 'utf8').toString('latin1'),
  `${name}!`,
];

const idOf = (prefix: string, name: string): string | null => {
  const id = sessionIdFor(prefix, name);
  return 'sessionId' in id ? id.sessionId : null;
};

describe('session ids of sessions-directory folders', () => {
  it('is one-to-one: two different folders never share a session id, whatever their names', () => {
    fc.assert(
      fc.property(prefixArb, fc.array(nameArb, { minLength: 1, maxLength: 20 }), (prefix, bases) => {
        const owners = new Map<string, string>();
        // Each name with its look-alikes: its escapes written out literally and the other way round.
        const names = new Set(bases.flatMap((name) => [name, ...lookAlikes(name), ...lookAlikes(name).flatMap(lookAlikes)]));
        for (const name of names) {
          const id = idOf(prefix, name);
          if (id === null) continue;
          const other = owners.get(id);
          assert.equal(other, undefined, `${JSON.stringify(name)} and ${JSON.stringify(other)} both map to ${id}`);
          owners.set(id, name);
        }
      }),
      // Each run checks up to 20 names with their look-alikes: fewer runs, as many names.
      { numRuns: RUNS / 4 },
    );
  });

  it('names that naive rules confuse get different ids', () => {
    const confusable = [
      ['a b', 'a_b', 'a-b', 'a.b', 'a_20b', 'a%20b'],
      ['João', 'Joao', 'Jo_C3_A3o', 'Joa\u0303o'],
      ['+5511987654321', '5511987654321', '_2B5511987654321'],
      ['bot', 'bot ', ' bot', 'bot_20'],
      ['x'.repeat(101), `${'x'.repeat(100)}y`, 'x'.repeat(100)],
      ['a b!', 'a_20b!', 'a_b!', 'a.b!', 'a_5Fb!', 'a_2Eb!'],
    ];
    for (const prefix of ['', 'acme-', 'p.']) {
      const ids = confusable.flat().map((name) => idOf(prefix, name));
      assert.equal(new Set(ids).size, ids.length, `${prefix}: ${ids.join(' ')}`);
      assert.ok(ids.every((id) => id !== null));
    }
  });

  it('gives a valid session id, keeps names that are one, and is a pure function of prefix and name', () => {
    fc.assert(
      fc.property(prefixArb, nameArb, (prefix, name) => {
        const id = sessionIdFor(prefix, name);
        assert.deepEqual(sessionIdFor(prefix, name), id);
        if ('skipped' in id) {
          const why = name.startsWith('.') || name.includes('/') || name.includes('\0') || prefix.length > 66;
          assert.ok(why, `${JSON.stringify(name)} skipped: ${id.skipped}`);
          return;
        }
        assert.ok(isValidSessionId(id.sessionId), id.sessionId);
        assert.ok(id.sessionId.startsWith(prefix));
        if (isValidSessionId(prefix + name)) assert.deepEqual(id, { sessionId: prefix + name, mapped: false });
        else assert.ok(id.mapped && id.sessionId.startsWith(`${prefix}.`), id.sessionId);
      }),
      { numRuns: RUNS },
    );
  });

  it('is stable: the documented ids of real folder names do not change between versions', () => {
    const pinned: [string, string, string][] = [
      ['', 'alice', 'alice'],
      ['acme-', 'alice', 'acme-alice'],
      ['', 'João', '.Jo_C3_A3o'],
      ['', '+5511987654321', '._2B5511987654321'],
      ['', '5511987654321@s.whatsapp.net', '.5511987654321_40s_2Ewhatsapp_2Enet'],
      ['', 'bot ', '.bot_20'],
      ['acme-', 'my bot', 'acme-.my_20bot'],
      ['', 'x'.repeat(101), `.${'x'.repeat(66)}.c675a2e604b0cd1229c036e3ce0c8742`],
    ];
    for (const [prefix, name, id] of pinned) assert.equal(idOf(prefix, name), id, JSON.stringify(name));
  });

  it("restore's side gives back the original folder name: decoded from the id, or the stored one for hashed ids", () => {
    fc.assert(
      fc.property(prefixArb, nameArb, (prefix, name) => {
        const id = sessionIdFor(prefix, name);
        if (!('sessionId' in id)) return;
        // The fleet and backup store the name of every mapped folder; an escaped id also decodes alone.
        const stored = id.mapped ? name : null;
        const back = folderFor(prefix, id.sessionId, stored);
        // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what restore refuses
        const unsafe = /[\u0000-\u001f\u007f]/.test(name) || Buffer.byteLength(name) > 255;
        assert.deepEqual(back, unsafe ? back : { folder: name });
        if (unsafe) assert.ok('skipped' in back, `${JSON.stringify(name)} would be created`);
        const hashed = id.mapped && id.sessionId.slice(prefix.length + 1).includes('.');
        if (!hashed && !unsafe) assert.deepEqual(folderFor(prefix, id.sessionId, null), { folder: name });
      }),
      { numRuns: RUNS },
    );
  });

  it('restore refuses unsafe or inconsistent folder names: never written', () => {
    const skipped = (id: string, stored: string | null) =>
      assert.ok('skipped' in folderFor('', id, stored), `${JSON.stringify(id)} / ${JSON.stringify(stored)} would be created`);
    for (const name of ['.', '..', '.x', 'a/b', '../x', 'a\0b', 'a\nb', 'a\u007fb', 'x'.repeat(256)]) skipped('.anything', name);
    // The same names reached through their escaped ids, with no stored name.
    for (const id of ['..', '._2E_2E', '.a_2Fb', '.a_00b', '.a_0Ab', '.a_7Fb']) skipped(id, null);
    // A stored name that maps to another id (a hand-edited row) is not trusted.
    skipped('.Jo_C3_A3o', 'Joao');
    skipped('alice', 'bob');
    // Not the canonical escape (lower-case hex, an escaped plain letter): no folder maps to it.
    skipped('.Jo_c3_a3o', null);
    skipped('._41', null);
    // A hashed id says nothing about its name: without the stored name there is nothing to create.
    skipped(`.${'x'.repeat(66)}.c675a2e604b0cd1229c036e3ce0c8742`, null);
    // Escaped bytes that are not UTF-8.
    skipped('.a_FFb', null);
    assert.deepEqual(folderFor('acme-', 'acme-alice', null), { folder: 'alice' });
    assert.ok('skipped' in folderFor('acme-', 'other-alice', null));
  });
});
