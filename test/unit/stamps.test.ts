// The recorded file metadata (files.stamp, the audit's book): one exact key per stamp, 64-bit values
// included, that tells stamps apart by any field; a stamp is trusted only outside the racy window; and
// the book never matches a name whose stamp is unknown or racy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RACY_WINDOW_NS, StampBook, trustworthy } from '../../src/audit.js';
import { stampKey } from '../../src/snapshot.js';

describe('recorded file stamps', () => {
  const stamp = { dev: 2049n, ino: 18446744073709551557n, size: 1190, mtimeNs: 1796554359852191513n, ctimeNs: 1796554359852191514n };

  it('keys every field exactly, beyond 2^53', () => {
    assert.equal(stampKey(stamp), '2049:18446744073709551557:1190:1796554359852191513:1796554359852191514');
  });

  it('tells stamps apart by any one field', () => {
    for (const field of ['dev', 'ino', 'mtimeNs', 'ctimeNs'] as const)
      assert.notEqual(stampKey(stamp), stampKey({ ...stamp, [field]: stamp[field] + 1n }), field);
    assert.notEqual(stampKey(stamp), stampKey({ ...stamp, size: stamp.size + 1 }), 'size');
  });

  it('trusts a stamp only when both times are older than the racy window at the read', () => {
    const readAt = stamp.ctimeNs + RACY_WINDOW_NS;
    assert.ok(!trustworthy(stamp, readAt), 'changed exactly one window before the read');
    assert.ok(trustworthy(stamp, readAt + 1n));
    assert.ok(!trustworthy({ ...stamp, ctimeNs: readAt }, readAt + 1n), 'a recent ctime (a rename, a chmod) is racy too');
  });

  it('matches a primed name only by its exact key, never one recorded as unknown', () => {
    const book = new StampBook();
    book.prime(
      new Map([
        ['a.json', stampKey(stamp)],
        ['b.json', null],
      ]),
    );
    assert.ok(book.primed);
    assert.ok(book.matches('a.json', stamp));
    assert.ok(!book.matches('a.json', { ...stamp, ctimeNs: stamp.ctimeNs + 1n }));
    assert.ok(!book.matches('b.json', stamp), 'unknown: read it');
    assert.ok(!book.matches('c.json', stamp), 'not in the head: read it');
    assert.deepEqual(
      [...book.names()].sort(),
      ['a.json', 'b.json'],
      'an unknown name still counts as held by the head (a deletion is seen)',
    );
  });

  it('does not match a file recorded within the racy window until a later read records it again', () => {
    const book = new StampBook();
    const file = { name: 'a.json', content: Buffer.from('{}'), sha256: Buffer.alloc(32), stamp };
    book.record([file], [], true, stamp.ctimeNs + 1n);
    assert.ok(!book.matches('a.json', stamp), 'racy');
    book.record([file], [], false, stamp.ctimeNs + RACY_WINDOW_NS + 1n);
    assert.ok(book.matches('a.json', stamp), 'read again later, same stamp: trusted');
    book.record([], ['a.json'], false, stamp.ctimeNs + RACY_WINDOW_NS + 1n);
    assert.ok(!book.matches('a.json', stamp), 'absent from the head');
  });
});
